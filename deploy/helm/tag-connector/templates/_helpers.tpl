{{/* Names and labels shared by the templates. */}}
{{- define "tag-connector.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tag-connector.fullname" -}}
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

{{- define "tag-connector.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "tag-connector.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Selector labels of one component (extract-tasks, start-job). Call with (list $ "component"). */}}
{{- define "tag-connector.selector" -}}
{{- $ := index . 0 -}}
app.kubernetes.io/name: {{ include "tag-connector.name" $ }}
app.kubernetes.io/instance: {{ $.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{- define "tag-connector.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "tag-connector.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "tag-connector.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* Environment both daemons share: HTTP listener, PostgreSQL, API auth, extra TAG_CONNECTOR_* values. */}}
{{- define "tag-connector.commonEnv" -}}
- name: TAG_CONNECTOR_SERVER_HOST
  value: "0.0.0.0"
- name: TAG_CONNECTOR_SERVER_PORT
  value: {{ .Values.service.port | quote }}
- name: XDG_STATE_HOME
  value: /var/lib/tag-connector/state
{{- if .Values.postgres.urlSecret.name }}
- name: TAG_CONNECTOR_PG_URL_FILE
  value: /var/run/secrets/tag-connector/postgres/{{ .Values.postgres.urlSecret.key }}
{{- else }}
- name: TAG_CONNECTOR_PG_HOST
  value: {{ .Values.postgres.host | quote }}
- name: TAG_CONNECTOR_PG_PORT
  value: {{ .Values.postgres.port | quote }}
- name: TAG_CONNECTOR_DB
  value: {{ .Values.postgres.database | quote }}
- name: TAG_CONNECTOR_USER
  value: {{ .Values.postgres.user | quote }}
- name: TAG_CONNECTOR_PASSWORD_FILE
  value: /var/run/secrets/tag-connector/postgres/{{ .Values.postgres.passwordSecret.key }}
{{- end }}
{{- if .Values.auth.tokensSecret.name }}
- name: TAG_CONNECTOR_AUTH_TOKENS_FILE
  value: /var/run/secrets/tag-connector/api/{{ .Values.auth.tokensSecret.key }}
{{- end }}
{{- if not (or .Values.auth.tokensSecret.name .Values.auth.oidcIssuer .Values.auth.insecureListen) }}
{{- fail "auth: set auth.tokensSecret.name or auth.oidcIssuer (the daemons refuse to serve the pod address without auth), or auth.insecureListen=true" }}
{{- end }}
{{- if .Values.auth.insecureListen }}
- name: TAG_CONNECTOR_INSECURE_LISTEN
  value: "true"
{{- end }}
{{- if .Values.auth.oidcIssuer }}
- name: TAG_CONNECTOR_AUTH_JWT_ISSUER
  value: {{ .Values.auth.oidcIssuer | quote }}
{{- end }}
{{- if and .Values.auth.oidcIssuer (not .Values.auth.jwtAudience) }}
{{- fail "auth.jwtAudience is required with auth.oidcIssuer (the API accepts only JWTs meant for it)" }}
{{- end }}
{{- if .Values.auth.jwtAudience }}
- name: TAG_CONNECTOR_AUTH_JWT_AUDIENCE
  value: {{ .Values.auth.jwtAudience | quote }}
{{- end }}
{{- if .Values.serviceMonitor.metricsPublic }}
- name: TAG_CONNECTOR_METRICS_PUBLIC
  value: "true"
{{- end }}
{{- range $k, $v := .Values.env }}
- name: {{ printf "TAG_CONNECTOR_%s" (upper $k) }}
  value: {{ $v | quote }}
{{- end }}
{{- end }}

{{/* Volumes both daemons share: the Secrets as files, and writable scratch space (read-only root fs). */}}
{{- define "tag-connector.commonVolumes" -}}
- name: postgres-secret
  secret:
    secretName: {{ .Values.postgres.urlSecret.name | default .Values.postgres.passwordSecret.name | required "postgres.passwordSecret.name (or postgres.urlSecret.name) is required: the chart never takes a password as a value" }}
{{- if .Values.auth.tokensSecret.name }}
- name: api-tokens
  secret:
    secretName: {{ .Values.auth.tokensSecret.name }}
{{- end }}
- name: data
  emptyDir: {}
- name: tmp
  emptyDir: {}
{{- end }}

{{- define "tag-connector.commonMounts" -}}
- name: postgres-secret
  mountPath: /var/run/secrets/tag-connector/postgres
  readOnly: true
{{- if .Values.auth.tokensSecret.name }}
- name: api-tokens
  mountPath: /var/run/secrets/tag-connector/api
  readOnly: true
{{- end }}
- name: data
  mountPath: /var/lib/tag-connector
- name: tmp
  mountPath: /tmp
{{- end }}
