{{/* Names, labels and checks shared by the templates. */}}

{{- define "driftbot.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "driftbot.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "driftbot.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "driftbot.selectorLabels" -}}
app.kubernetes.io/name: {{ include "driftbot.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "driftbot.labels" -}}
helm.sh/chart: {{ include "driftbot.chart" . }}
{{ include "driftbot.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: driftbot
{{- end }}

{{- define "driftbot.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "driftbot.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "driftbot.image" -}}
{{- $ref := printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" $ref .Values.image.digest }}
{{- else }}
{{- $ref }}
{{- end }}
{{- end }}

{{/* "true" when this release elects a leader (leaderElection.enabled: true, or auto with two
pods that can run at once), else "false". */}}
{{- define "driftbot.leaderElection" -}}
{{- $on := toString .Values.leaderElection.enabled }}
{{- if eq $on "auto" }}
{{- if or (gt (int .Values.replicaCount) 1) (not .Values.persistence.enabled) }}true{{ else }}false{{ end }}
{{- else if has $on (list "true" "false") }}
{{- $on }}
{{- else }}
{{- fail (printf "leaderElection.enabled is %v: use auto, true or false" $on) }}
{{- end }}
{{- end }}

{{/* The config file: .Values.config, with the Flux webhook token variable when the chart
passes the token in. */}}
{{- define "driftbot.config" -}}
{{- $config := deepCopy .Values.config }}
{{- if .Values.flux.webhookToken.existingSecret }}
{{- $server := default (dict) $config.server }}
{{- $named := get $server "flux_webhook_token_env" }}
{{- if and $named (ne $named "FLUX_WEBHOOK_TOKEN") }}
{{- fail (printf "config.server.flux_webhook_token_env is %s, but flux.webhookToken passes the token as FLUX_WEBHOOK_TOKEN: remove it from config" $named) }}
{{- end }}
{{- $_ := set $server "flux_webhook_token_env" "FLUX_WEBHOOK_TOKEN" }}
{{- $_ := set $config "server" $server }}
{{- end }}
{{- toYaml $config }}
{{- end }}

{{- define "driftbot.leaseName" -}}
{{- default (include "driftbot.fullname" .) .Values.leaderElection.leaseName }}
{{- end }}

{{- define "driftbot.configMapName" -}}
{{- default (printf "%s-config" (include "driftbot.fullname" .)) .Values.existingConfigMap }}
{{- end }}

{{/* Refuse settings that would run two active notifiers or share a SQLite volume. */}}
{{- define "driftbot.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (eq (include "driftbot.leaderElection" .) "false") }}
{{- fail "replicaCount > 1 needs leaderElection.enabled=true: otherwise every replica notifies" }}
{{- end }}
{{- if and (gt (int .Values.replicaCount) 1) .Values.persistence.enabled }}
{{- fail "replicaCount > 1 cannot share the SQLite volume: set persistence.enabled=false and store.existingSecret (a PostgreSQL DSN)" }}
{{- end }}
{{- if and (eq .Values.image.tag "latest") (not .Values.image.digest) }}
{{- fail "image.tag=latest is not reproducible: use a version tag or image.digest" }}
{{- end }}
{{- end }}
