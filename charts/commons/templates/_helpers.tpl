{{/* The name of every object of the release. */}}
{{- define "commons.fullname" -}}
{{- if contains "commons" .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-commons" .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "commons.labels" -}}
app.kubernetes.io/name: commons
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* What selects the release's pods. */}}
{{- define "commons.selector" -}}
app.kubernetes.io/name: commons
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The webhook's Service, and the DNS names its certificate is for. */}}
{{- define "commons.webhookService" -}}
{{ include "commons.fullname" . }}-webhook
{{- end -}}
