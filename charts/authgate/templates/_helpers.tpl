{{/*
Helpers read only .Values, .Release and .Capabilities, never .Chart, so that
the sidecar templates work from a parent chart's context too (where .Chart is
the parent). The chart's name is therefore spelt out: "authgate".
*/}}

{{- define "authgate.name" -}}
{{- default "authgate" .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "authgate.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default "authgate" .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "authgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "authgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "authgate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "authgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: proxy
{{- end }}

{{- define "authgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "authgate.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* authgate.secretName: the Secret holding the client secret and cookie key. */}}
{{- define "authgate.secretName" -}}
{{- default (include "authgate.fullname" .) .Values.secret.existingSecret }}
{{- end }}

{{/* authgate.hasClientSecret: "true" when AUTHGATE_CLIENT_SECRET is set (a confidential client). */}}
{{- define "authgate.hasClientSecret" -}}
{{- if .Values.secret.existingSecret }}
{{- if .Values.secret.clientSecretKey }}true{{ end }}
{{- else if .Values.secret.clientSecret }}true{{ end }}
{{- end }}

{{/* authgate.redisPasswordKey: the Secret key holding AUTHGATE_REDIS_PASSWORD, or "" for none. */}}
{{- define "authgate.redisPasswordKey" -}}
{{- if .Values.secret.existingSecret }}
{{- .Values.secret.redisPasswordKey }}
{{- else if .Values.secret.redisPassword }}
{{- default "redis-password" .Values.secret.redisPasswordKey }}
{{- end }}
{{- end }}

{{- define "authgate.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (toString .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
authgate.nativeSidecar: "true" when the sidecar is to be a native sidecar (an
initContainer with restartPolicy: Always; Kubernetes 1.29+, on by default since
1.29 and GA in 1.33).
*/}}
{{- define "authgate.nativeSidecar" -}}
{{- $native := toString .Values.sidecar.native }}
{{- if eq $native "auto" }}
{{- if semverCompare ">=1.29-0" .Capabilities.KubeVersion.Version }}true{{ end }}
{{- else if eq $native "true" }}true{{ end }}
{{- end }}

{{/*
authgate.container renders the authgate container as one list item. Input: a
dict with Values, Release and restartPolicy ("Always" for a native sidecar,
"" otherwise). Standalone and sidecar share it, so they cannot drift apart.
*/}}
{{- define "authgate.container" -}}
{{- $v := .Values -}}
- name: {{ $v.sidecar.containerName }}
  image: {{ include "authgate.image" . | quote }}
  imagePullPolicy: {{ $v.image.pullPolicy }}
  {{- if .restartPolicy }}
  restartPolicy: {{ .restartPolicy }}
  {{- end }}
  ports:
    - name: {{ $v.portNames.http }}
      containerPort: {{ $v.listenPort }}
      protocol: TCP
    - name: {{ $v.portNames.internal }}
      containerPort: {{ $v.internalPort }}
      protocol: TCP
  {{- include "authgate.envAndMounts" . | nindent 2 }}
  startupProbe:
    httpGet:
      path: /healthz
      port: {{ $v.portNames.internal }}
    {{- toYaml $v.startupProbe | nindent 4 }}
  livenessProbe:
    httpGet:
      path: /healthz
      port: {{ $v.portNames.internal }}
    {{- toYaml $v.livenessProbe | nindent 4 }}
  readinessProbe:
    httpGet:
      path: /readyz
      port: {{ $v.portNames.internal }}
    {{- toYaml $v.readinessProbe | nindent 4 }}
  {{- with $v.lifecycle }}
  lifecycle:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  resources:
    {{- toYaml $v.resources | nindent 4 }}
  securityContext:
    {{- toYaml $v.securityContext | nindent 4 }}
{{- end }}

{{/* authgate.volumes renders the pod volumes the container mounts, as list items. */}}
{{- define "authgate.volumes" -}}
{{- if .Values.tls.existingSecret }}
- name: authgate-tls
  secret:
    secretName: {{ .Values.tls.existingSecret }}
{{- end }}
{{- if include "authgate.hasRoutes" . }}
- name: authgate-routes
  configMap:
    name: {{ include "authgate.routesConfigMap" . }}
{{- end }}
{{- with .Values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
authgate.sidecarContext turns the sidecar templates' argument, a dict with
"top" (the including chart's root context, $) and "values" (its
.Values.authgate, or whatever the dependency is aliased as), into the context
the helpers take.
*/}}
{{- define "authgate.sidecarContext" -}}
{{- if not (and (hasKey . "top") (hasKey . "values")) }}
{{- fail "authgate.sidecar.*: pass (dict \"top\" $ \"values\" .Values.authgate)" }}
{{- end }}
{{- if ne (toString .values.mode) "sidecar" }}
{{- fail "authgate.sidecar.*: set authgate.mode to \"sidecar\" (otherwise the authgate chart also deploys itself)" }}
{{- end }}
{{- end }}

{{/*
authgate.sidecar.initContainers: the authgate container as a native sidecar,
or nothing when sidecar.native resolves to false. Include it in your pod's
initContainers list, first:

  initContainers:
    {{- include "authgate.sidecar.initContainers" (dict "top" $ "values" .Values.authgate) | nindent 8 }}
*/}}
{{- define "authgate.sidecar.initContainers" -}}
{{- include "authgate.sidecarContext" . }}
{{- $ctx := dict "Values" .values "Release" .top.Release "Capabilities" .top.Capabilities }}
{{- if include "authgate.nativeSidecar" $ctx }}
{{- include "authgate.container" (merge (dict "restartPolicy" "Always") $ctx) }}
{{- end }}
{{- end }}

{{/*
authgate.sidecar.containers: the authgate container as a regular container
(the fallback before Kubernetes 1.29), or nothing for a native sidecar.
Include it in your pod's containers list:

  containers:
    {{- include "authgate.sidecar.containers" (dict "top" $ "values" .Values.authgate) | nindent 8 }}
    - name: app
*/}}
{{- define "authgate.sidecar.containers" -}}
{{- include "authgate.sidecarContext" . }}
{{- $ctx := dict "Values" .values "Release" .top.Release "Capabilities" .top.Capabilities }}
{{- if not (include "authgate.nativeSidecar" $ctx) }}
{{- include "authgate.container" (merge (dict "restartPolicy" "") $ctx) }}
{{- end }}
{{- end }}

{{/*
authgate.sidecar.volumes: the volumes the sidecar mounts (TLS, extraVolumes),
as list items; nothing when there are none. Include it in your pod's volumes.
*/}}
{{- define "authgate.sidecar.volumes" -}}
{{- include "authgate.sidecarContext" . }}
{{- include "authgate.volumes" (dict "Values" .values) }}
{{- end }}

{{/*
authgate.envAndMounts renders the env and volumeMounts of an authgate
container: the proxy and the `authgate check` init container share them, so
the check sees exactly the configuration the proxy will load.
*/}}
{{- define "authgate.envAndMounts" -}}
{{- $v := .Values -}}
env:
  - name: AUTHGATE_LISTEN_ADDR
    value: {{ printf ":%v" $v.listenPort | quote }}
  - name: AUTHGATE_INTERNAL_ADDR
    value: {{ printf ":%v" $v.internalPort | quote }}
  {{- if include "authgate.hasClientSecret" . }}
  - name: AUTHGATE_CLIENT_SECRET
    valueFrom:
      secretKeyRef:
        name: {{ include "authgate.secretName" . }}
        key: {{ $v.secret.clientSecretKey }}
  {{- end }}
  - name: AUTHGATE_COOKIE_SECRET
    valueFrom:
      secretKeyRef:
        name: {{ include "authgate.secretName" . }}
        key: {{ $v.secret.cookieSecretKey }}
  {{- with include "authgate.redisPasswordKey" . }}
  - name: AUTHGATE_REDIS_PASSWORD
    valueFrom:
      secretKeyRef:
        name: {{ include "authgate.secretName" $ }}
        key: {{ . }}
  {{- end }}
  {{- if $v.tls.existingSecret }}
  - name: AUTHGATE_TLS_CERT_FILE
    value: /etc/authgate/tls/tls.crt
  - name: AUTHGATE_TLS_KEY_FILE
    value: /etc/authgate/tls/tls.key
  {{- end }}
  {{- if include "authgate.hasRoutes" . }}
  {{- if or $v.config.AUTHGATE_ROUTES_FILE $v.config.AUTHGATE_ROUTES }}
  {{- fail "routes: set routes.rules (or routes.existingConfigMap) or config.AUTHGATE_ROUTES_FILE / AUTHGATE_ROUTES, not both" }}
  {{- end }}
  - name: AUTHGATE_ROUTES_FILE
    value: {{ printf "/etc/authgate/routes/%s" $v.routes.key | quote }}
  {{- end }}
  {{- range $name, $value := $v.config }}
  {{- if and (not (kindIs "invalid" $value)) (ne (toString $value) "") }}
  - name: {{ $name }}
    value: {{ toString $value | quote }}
  {{- end }}
  {{- end }}
  {{- with $v.extraEnv }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- if or $v.tls.existingSecret $v.extraVolumeMounts (include "authgate.hasRoutes" .) }}
volumeMounts:
  {{- if $v.tls.existingSecret }}
  - name: authgate-tls
    mountPath: /etc/authgate/tls
    readOnly: true
  {{- end }}
  {{- if include "authgate.hasRoutes" . }}
  - name: authgate-routes
    mountPath: /etc/authgate/routes
    readOnly: true
  {{- end }}
  {{- with $v.extraVolumeMounts }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}
{{- end }}

{{/* authgate.hasRoutes is "true" when routes are configured (rules or an existing ConfigMap). */}}
{{- define "authgate.hasRoutes" -}}
{{- if and .Values.routes (or .Values.routes.rules .Values.routes.existingConfigMap) }}true{{ end }}
{{- end }}

{{/* authgate.routesConfigMap names the ConfigMap holding the routes file. */}}
{{- define "authgate.routesConfigMap" -}}
{{- if .Values.routes.existingConfigMap }}{{ .Values.routes.existingConfigMap }}{{ else }}{{ include "authgate.fullname" . }}-routes{{ end }}
{{- end }}
