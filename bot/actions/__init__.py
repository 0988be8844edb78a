"""The actions room: acting on Argo CD and Flux from chat. The backends (the Kubernetes API,
as `argocd app sync --core` and `flux reconcile` do it; Argo CD's API server where the config
names one), the pending confirmations and approvals, and following an action to the result
the watch sees.

May import pipeline, delivery, store and ops; never app, chat, jobs or inbound.
"""
