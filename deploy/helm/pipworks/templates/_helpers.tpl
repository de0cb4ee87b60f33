{{/* Names, labels and the per-service view of the values. */}}

{{- define "pipworks.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "pipworks.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "pipworks.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The name of one service's objects: pipworks.componentName (dict "root" $ "name" "identity") */}}
{{- define "pipworks.componentName" -}}
{{- printf "%s-%s" (include "pipworks.fullname" .root) .name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "pipworks.labels" -}}
helm.sh/chart: {{ include "pipworks.chart" .root }}
{{ include "pipworks.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: pipworks
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "pipworks.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pipworks.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- if .name }}
app.kubernetes.io/component: {{ .name }}
{{- end }}
{{- end -}}

{{/* Labels that select every pod of the release (deny-all, peers). */}}
{{- define "pipworks.releaseSelector" -}}
app.kubernetes.io/name: {{ include "pipworks.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "pipworks.annotations" -}}
{{- with .Values.commonAnnotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{- define "pipworks.image" -}}
{{- $image := .Values.image -}}
{{- $repo := $image.repository -}}
{{- if $image.registry }}{{- $repo = printf "%s/%s" $image.registry $image.repository -}}{{- end -}}
{{- if $image.digest -}}
{{- printf "%s@%s" $repo $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repo (default .Chart.AppVersion $image.tag) -}}
{{- end -}}
{{- end -}}

{{/*
The effective settings of one service: `defaults` overlaid with its own block, as YAML.
Usage: $svc := include "pipworks.service" (dict "root" $ "name" $name) | fromYaml
*/}}
{{- define "pipworks.service" -}}
{{- $own := index .root.Values.services .name | default dict -}}
{{- $merged := mergeOverwrite (deepCopy .root.Values.defaults) (deepCopy $own) -}}
{{- $_ := set $merged "kind" (default "grpc" $own.kind) -}}
{{- $_ := set $merged "database" (default dict $own.database) -}}
{{- $_ := set $merged "public" (default false $own.public) -}}
{{- $_ := set $merged "calledBy" (default list $own.calledBy) -}}
{{- toYaml $merged -}}
{{- end -}}

{{/* The enabled services, in a stable order, as a YAML list of names. */}}
{{- define "pipworks.enabledServices" -}}
{{- $names := list -}}
{{- range $name := keys .Values.services | sortAlpha -}}
{{- if (index $.Values.services $name).enabled -}}
{{- $names = append $names $name -}}
{{- end -}}
{{- end -}}
{{- toYaml $names -}}
{{- end -}}

{{/* In-cluster gRPC target of a service (headless Service, client-side round robin). */}}
{{- define "pipworks.grpcHost" -}}
{{- printf "%s.%s.svc.cluster.local" (include "pipworks.componentName" .) .root.Release.Namespace -}}
{{- end -}}

{{/* The gateway's route table: every enabled gRPC backend's proto package. */}}
{{- define "pipworks.gatewayRoutes" -}}
{{- $routes := list -}}
{{- range $name := include "pipworks.enabledServices" . | fromYamlArray -}}
{{- $svc := include "pipworks.service" (dict "root" $ "name" $name) | fromYaml -}}
{{- if and (eq $svc.kind "grpc") (not $svc.public) -}}
{{- $host := include "pipworks.grpcHost" (dict "root" $ "name" $name) -}}
{{- $routes = append $routes (printf "pipworks.%s.v1=dns:///%s:%v" $name $host $svc.grpcPort) -}}
{{- end -}}
{{- end -}}
{{- join "," $routes -}}
{{- end -}}

{{- define "pipworks.natsUrl" -}}
{{- if .Values.nats.url -}}
{{- .Values.nats.url -}}
{{- else -}}
{{- printf "nats://%s-nats.%s.svc.cluster.local:%v" (include "pipworks.fullname" .) .Release.Namespace .Values.nats.port -}}
{{- end -}}
{{- end -}}

{{/* Name of the Secret the chart creates for a service's development values. */}}
{{- define "pipworks.secretName" -}}
{{- printf "%s-secrets" (include "pipworks.componentName" .) -}}
{{- end -}}

{{/* Whether the chart creates a Secret for this service (dict "root" "name" "svc"). */}}
{{- define "pipworks.createsSecret" -}}
{{- if or .svc.secretValues (and .svc.database.enabled .svc.database.url (not .svc.database.existingSecret)) -}}true{{- end -}}
{{- end -}}

{{- define "pipworks.encryptionSecretName" -}}
{{- default (printf "%s-encryption" (include "pipworks.fullname" .)) .Values.encryption.existingSecret -}}
{{- end -}}

{{/* Environment of a service's containers that comes from Secrets (dict "root" "name" "svc"). */}}
{{- define "pipworks.secretEnv" -}}
{{- $root := .root -}}
{{- if .svc.database.enabled }}
- name: PIPWORKS_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ default (include "pipworks.secretName" .) .svc.database.existingSecret }}
      key: {{ if .svc.database.existingSecret }}{{ .svc.database.key }}{{ else }}PIPWORKS_DATABASE_URL{{ end }}
{{- end }}
{{- if and (eq .svc.kind "grpc") (or $root.Values.encryption.existingSecret $root.Values.encryption.keys) }}
- name: PIPWORKS_ENCRYPTION_KEYS
  valueFrom:
    secretKeyRef:
      name: {{ include "pipworks.encryptionSecretName" $root }}
      key: {{ if $root.Values.encryption.existingSecret }}{{ $root.Values.encryption.keysKey }}{{ else }}keys{{ end }}
{{- end }}
{{- /* A value given in secretValues (development) wins over a secretEnv reference. */}}
{{- range $var := keys .svc.secretEnv | sortAlpha }}
{{- if not (hasKey $.svc.secretValues $var) }}
{{- $ref := index $.svc.secretEnv $var }}
- name: {{ $var }}
  valueFrom:
    secretKeyRef:
      name: {{ $ref.secretName }}
      key: {{ $ref.key }}
{{- end }}
{{- end }}
{{- range $var := keys .svc.secretValues | sortAlpha }}
- name: {{ $var }}
  valueFrom:
    secretKeyRef:
      name: {{ include "pipworks.secretName" $ }}
      key: {{ $var }}
{{- end }}
{{- end -}}

{{/* Hardened security contexts shared by every container the chart runs. */}}
{{- define "pipworks.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "pipworks.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
privileged: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* The ConfigMap data of a service (dict "root" "name" "svc"); also hashed into a pod annotation. */}}
{{- define "pipworks.configData" -}}
{{- $root := .root -}}
{{- $data := dict -}}
{{- if eq .svc.kind "grpc" -}}
{{- $_ := set $data "PIPWORKS_ENVIRONMENT" $root.Values.environment -}}
{{- $_ := set $data "PIPWORKS_LOG_LEVEL" $root.Values.logLevel -}}
{{- $_ := set $data "PIPWORKS_GRPC_ADDRESS" (printf "0.0.0.0:%v" .svc.grpcPort) -}}
{{- $_ := set $data "PIPWORKS_METRICS_PORT" (toString .svc.metricsPort) -}}
{{- $_ := set $data "PIPWORKS_NATS_URL" (include "pipworks.natsUrl" $root) -}}
{{- $_ := set $data "PIPWORKS_STREAM_REPLICAS" (toString $root.Values.nats.streamReplicas) -}}
{{- $_ := set $data "PIPWORKS_AUTH_ISSUER" $root.Values.auth.issuer -}}
{{- $_ := set $data "PIPWORKS_AUTH_AUDIENCE" $root.Values.auth.audience -}}
{{- $_ := set $data "PIPWORKS_SHUTDOWN_DRAIN_SECONDS" (toString $root.Values.shutdown.drainSeconds) -}}
{{- $_ := set $data "PIPWORKS_SHUTDOWN_GRACE_SECONDS" (toString $root.Values.shutdown.graceSeconds) -}}
{{- if .svc.database.enabled -}}
{{- $_ := set $data "PIPWORKS_MIGRATE_ON_START" (ternary "false" "true" $root.Values.migrations.job) -}}
{{- $_ := set $data "PIPWORKS_MIGRATION_WAIT_SECONDS" (toString $root.Values.migrations.waitSeconds) -}}
{{- end -}}
{{- if $root.Values.encryption.activeKey -}}
{{- $_ := set $data "PIPWORKS_ENCRYPTION_ACTIVE_KEY" $root.Values.encryption.activeKey -}}
{{- end -}}
{{- if and (ne .name "identity") (index $root.Values.services "identity").enabled -}}
{{- $identity := include "pipworks.service" (dict "root" $root "name" "identity") | fromYaml -}}
{{- $_ := set $data "PIPWORKS_IDENTITY_ADDRESS" (printf "%s:%v" (include "pipworks.grpcHost" (dict "root" $root "name" "identity")) $identity.grpcPort) -}}
{{- end -}}
{{- if .svc.public -}}
{{- $_ := set $data "PIPWORKS_GATEWAY_ROUTES" (include "pipworks.gatewayRoutes" $root) -}}
{{- end -}}
{{- $_ := set $data "OTEL_SERVICE_NAME" (printf "pipworks-%s" .name) -}}
{{- if $root.Values.otel.endpoint -}}
{{- $_ := set $data "OTEL_EXPORTER_OTLP_ENDPOINT" $root.Values.otel.endpoint -}}
{{- $_ := set $data "OTEL_EXPORTER_OTLP_PROTOCOL" $root.Values.otel.protocol -}}
{{- end -}}
{{- $attributes := list (printf "service.namespace=%s" $root.Release.Namespace) (printf "k8s.namespace.name=%s" $root.Release.Namespace) -}}
{{- range $key := keys $root.Values.otel.resourceAttributes | sortAlpha -}}
{{- $attributes = append $attributes (printf "%s=%v" $key (index $root.Values.otel.resourceAttributes $key)) -}}
{{- end -}}
{{- $_ := set $data "OTEL_RESOURCE_ATTRIBUTES" (join "," $attributes) -}}
{{- end -}}
{{- if and .svc.webhook .svc.webhook.enabled .svc.webhook.portVariable -}}
{{- $_ := set $data .svc.webhook.portVariable (toString .svc.webhook.port) -}}
{{- end -}}
{{- range $key := keys .svc.env | sortAlpha -}}
{{- $value := index $.svc.env $key -}}
{{- if ne (toString $value) "" -}}
{{- $_ := set $data $key (tpl (toString $value) $root) -}}
{{- end -}}
{{- end -}}
{{- if $data -}}
{{- toYaml $data -}}
{{- else -}}
{}
{{- end -}}
{{- end -}}

{{- define "pipworks.secretData" -}}
{{- $data := dict -}}
{{- if and .svc.database.enabled .svc.database.url (not .svc.database.existingSecret) -}}
{{- $_ := set $data "PIPWORKS_DATABASE_URL" .svc.database.url -}}
{{- end -}}
{{- range $key, $value := .svc.secretValues -}}
{{- $_ := set $data $key (toString $value) -}}
{{- end -}}
{{- toYaml $data -}}
{{- end -}}

{{/* Drain + grace + 10 s for the NATS drain and the engine: what SIGTERM's ordered shutdown needs. */}}
{{- define "pipworks.terminationGrace" -}}
{{- add (.Values.shutdown.drainSeconds | ceil | int) (.Values.shutdown.graceSeconds | ceil | int) 10 -}}
{{- end -}}

{{- define "pipworks.secretHook" -}}
{{- if .Values.migrations.job -}}
annotations:
  helm.sh/hook: pre-install,pre-upgrade
  helm.sh/hook-weight: "-10"
  helm.sh/hook-delete-policy: before-hook-creation
{{- end -}}
{{- end -}}
