{{/*
Labels on every object the chart makes: deploy/'s app.kubernetes.io/part-of,
and Helm's. Never in a selector (selectors are immutable, and stay deploy/'s)
nor in a pod template (a new chart version would roll every pod).
*/}}
{{- define "netservice.labels" -}}
app.kubernetes.io/part-of: netservice
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}

{{- define "netservice.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* The lease the aggregator elects its leader with, and its Role names. */}}
{{- define "netservice.leaseName" -}}
{{ .Values.aggregator.leaseName | default "netservice-aggregator" }}
{{- end }}

{{/*
The container fields both programs share: image, port, probes, resources,
security context. Call with (dict "root" $ "program" .Values.agent).
*/}}
{{- define "netservice.container" -}}
image: {{ include "netservice.image" .root }}
{{- with .root.Values.image.pullPolicy }}
imagePullPolicy: {{ . }}
{{- end }}
ports:
  - name: http-metrics
    containerPort: {{ include "netservice.metricsPort" .program }}
    protocol: TCP
livenessProbe:
  httpGet:
    path: /healthz
    port: http-metrics
  initialDelaySeconds: 10
  periodSeconds: 10
  timeoutSeconds: 5
  failureThreshold: 3
readinessProbe:
  httpGet:
    path: /readyz
    port: http-metrics
  periodSeconds: 5
  timeoutSeconds: 5
  failureThreshold: 3
{{- with .program.resources }}
resources:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  capabilities:
    drop: [ALL]
{{- end }}

{{/* LOG_LEVEL and LOG_FORMAT, when set: env entries. Call with (dict "root" $ "program" .Values.agent). */}}
{{- define "netservice.logEnv" -}}
{{- with .program.logLevel | default .root.Values.logLevel }}
- name: LOG_LEVEL
  value: {{ . | quote }}
{{- end }}
{{- with .root.Values.logFormat }}
- name: LOG_FORMAT
  value: {{ . | quote }}
{{- end }}
{{- end }}

{{/* The metrics port; 0 (which turns the endpoint off) would leave the probes nothing to ask. */}}
{{- define "netservice.metricsPort" -}}
{{- $port := int64 .metricsPort -}}
{{- if or (lt $port 1) (gt $port 65535) -}}
{{- fail (printf "metricsPort %v: the probes need /healthz and /readyz, so it must be 1 to 65535" .metricsPort) -}}
{{- end -}}
{{ $port }}
{{- end }}

{{/* --metrics-port, only when it differs from the programs' default (8080), so default args stay deploy/'s. */}}
{{- define "netservice.metricsPortArg" -}}
{{- $port := include "netservice.metricsPort" . -}}
{{- if ne $port "8080" -}}
- --metrics-port={{ $port }}
{{- end -}}
{{- end }}

{{/* The pod securityContext of both programs: Pod Security "restricted". */}}
{{- define "netservice.podSecurityContext" -}}
securityContext:
  runAsNonRoot: true
  runAsUser: 65532
  runAsGroup: 65532
  seccompProfile:
    type: RuntimeDefault
{{- end }}

{{/* Scheduling: nodeSelector, affinity, tolerations, priority. Call with a program's values. */}}
{{- define "netservice.scheduling" -}}
{{- with .priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* "--flag=N" as a list item when the value is set (null: the program's default). Call with (list "flag" value). */}}
{{- define "netservice.intFlag" -}}
{{- $value := index . 1 -}}
{{- if not (kindIs "invalid" $value) -}}
- --{{ index . 0 }}={{ int64 $value }}
{{- end -}}
{{- end }}
