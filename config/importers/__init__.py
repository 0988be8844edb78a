"""Translators from other tools' notification setups to a driftbot config. Pure: they take
the objects already read (Argo CD's argocd-notifications-cm ConfigMap, Applications and
AppProjects; Flux's Alert and Provider objects) and return the config text, with a comment on
every line saying what it came from and a comment for everything that has no equivalent.
Reading files and clusters is the CLI's job (bot/app)."""
