{{/* Names and labels. */}}
{{- define "herald.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 50 | trimSuffix "-" -}}
{{- end -}}

{{- define "herald.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "herald.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The pods' service account: the one the chart makes, or one named. */}}
{{- define "herald.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "herald.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "herald.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/name: {{ include "herald.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "herald.selector" -}}
app.kubernetes.io/name: {{ include "herald.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "herald.image" -}}
{{- if .image.digest -}}
{{- printf "%s@%s" .image.repository .image.digest -}}
{{- else -}}
{{- printf "%s:%s" .image.repository (default .root.Chart.AppVersion .image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Refuses values that cannot work, with the reason. */}}
{{- define "herald.check" -}}
{{- if not .Values.redis.url -}}
{{- fail "redis.url is required: Herald relays through a Redis you provide (redis://host:6379)" -}}
{{- end -}}
{{- if and (not .Values.auth.anonymous) (or (not .Values.auth.existingSecret) (eq (len .Values.auth.keys) 0)) -}}
{{- fail "connections need tokens by default: set auth.existingSecret and auth.keys (or auth.anonymous=true for a private test install)" -}}
{{- end -}}
{{- end -}}

{{/* The API keys' Secret, if any. */}}
{{- define "herald.apiSecret" -}}
{{- default .Values.auth.existingSecret .Values.api.existingSecret -}}
{{- end -}}

{{/* Environment shared by the gateway and the presence service: the Redis password and the
API keys from Secrets. `url` is the configuration key of the Redis URL. */}}
{{- define "herald.secretEnv" -}}
{{- $root := .root -}}
{{- if $root.Values.redis.existingSecret }}
- name: HERALD_REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $root.Values.redis.existingSecret }}
      key: {{ $root.Values.redis.passwordKey }}
- name: {{ .url }}
  value: {{ include "herald.redisUrlWithPassword" $root | quote }}
{{- with $root.Values.redis.sentinelPasswordKey }}
- name: {{ $.url | replace "URL" "SENTINEL_PASSWORD" }}
  valueFrom:
    secretKeyRef:
      name: {{ $root.Values.redis.existingSecret }}
      key: {{ . }}
{{- end }}
{{- else }}
- name: {{ .url }}
  value: {{ $root.Values.redis.url | quote }}
{{- end }}
{{- with include "herald.apiSecret" $root }}
- name: HERALD__API__KEYS
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $root.Values.api.keysKey }}
{{- end }}
{{- end -}}

{{/* redis.url with the password spliced in as $(HERALD_REDIS_PASSWORD), which Kubernetes
expands from the variable defined before it; every seed URL gets it in cluster mode. */}}
{{- define "herald.redisUrlWithPassword" -}}
{{- $urls := list -}}
{{- if contains "+sentinel://" .Values.redis.url -}}
{{- $scheme := ternary "rediss+sentinel://" "redis+sentinel://" (hasPrefix "rediss+" .Values.redis.url) -}}
{{- $urls = append $urls (printf "%s:$(HERALD_REDIS_PASSWORD)@%s" $scheme (trimPrefix $scheme .Values.redis.url)) -}}
{{- else -}}
{{- range (splitList "," .Values.redis.url) -}}
{{- $u := trim . -}}
{{- $scheme := ternary "rediss://" "redis://" (hasPrefix "rediss://" $u) -}}
{{- $urls = append $urls (printf "%s:$(HERALD_REDIS_PASSWORD)@%s" $scheme (trimPrefix $scheme $u)) -}}
{{- end -}}
{{- end -}}
{{- join "," $urls -}}
{{- end -}}

{{/* What every pod of a component shares: its service account, priority and placement.
`pod` is the component's values. */}}
{{- define "herald.podPlacement" -}}
serviceAccountName: {{ include "herald.serviceAccountName" .root }}
automountServiceAccountToken: {{ .root.Values.serviceAccount.automountToken }}
{{- with .pod.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .root.Values.podSecurityContext | nindent 2 }}
{{- end -}}

{{/* The scheduling of a component's pods: spread, node selector, tolerations, affinity. */}}
{{- define "herald.scheduling" -}}
{{- if .pod.topologySpread.enabled }}
topologySpreadConstraints:
  - maxSkew: {{ .pod.topologySpread.maxSkew }}
    topologyKey: {{ .pod.topologySpread.topologyKey }}
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "herald.selector" .component | nindent 8 }}
  {{- if ne .pod.topologySpread.topologyKey "kubernetes.io/hostname" }}
  - maxSkew: 1
    topologyKey: kubernetes.io/hostname
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "herald.selector" .component | nindent 8 }}
  {{- end }}
{{- end }}
{{- with .pod.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .pod.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .pod.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Whole seconds of a duration written as "25s", "2m" or "1m30s". */}}
{{- define "herald.seconds" -}}
{{- $total := 0 -}}
{{- range (regexFindAll "[0-9]+[hms]" . -1) -}}
{{- $n := int (trimSuffix "s" (trimSuffix "m" (trimSuffix "h" .))) -}}
{{- if hasSuffix "h" . -}}{{- $total = add $total (mul $n 3600) -}}
{{- else if hasSuffix "m" . -}}{{- $total = add $total (mul $n 60) -}}
{{- else -}}{{- $total = add $total $n -}}{{- end -}}
{{- end -}}
{{- $total -}}
{{- end -}}
