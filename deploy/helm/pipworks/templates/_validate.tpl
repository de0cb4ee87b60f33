{{/*
Checks across values that the JSON schema cannot express. Every problem is collected
and reported at once, so an operator fixes the values file in one pass.
*/}}
{{- define "pipworks.validateValues" -}}
{{- $messages := list -}}
{{- $enabled := include "pipworks.enabledServices" . | fromYamlArray -}}
{{- $public := list -}}
{{- $grpcServices := 0 -}}
{{- range $name := $enabled -}}
{{- $svc := include "pipworks.service" (dict "root" $ "name" $name) | fromYaml -}}
{{- if $svc.public }}{{ $public = append $public $name }}{{ end -}}
{{- if eq $svc.kind "grpc" }}{{ $grpcServices = add1 $grpcServices }}{{ end -}}
{{- if and $svc.database.enabled (not $svc.database.existingSecret) (not $svc.database.url) -}}
{{- $messages = append $messages (printf "services.%s.database: set existingSecret (the Secret holding PIPWORKS_DATABASE_URL) or, for development, url" $name) -}}
{{- end -}}
{{- if and $svc.autoscaling.enabled (gt (int $svc.autoscaling.minReplicas) (int $svc.autoscaling.maxReplicas)) -}}
{{- $messages = append $messages (printf "services.%s.autoscaling: minReplicas (%v) is above maxReplicas (%v)" $name $svc.autoscaling.minReplicas $svc.autoscaling.maxReplicas) -}}
{{- end -}}
{{- if and $svc.pdb.enabled (not $svc.autoscaling.enabled) (le (int $svc.replicas) (int $svc.pdb.maxUnavailable)) (gt (int $svc.replicas) 1) -}}
{{- $messages = append $messages (printf "services.%s.pdb: maxUnavailable (%v) lets every one of its %v replicas go at once" $name $svc.pdb.maxUnavailable $svc.replicas) -}}
{{- end -}}
{{- range $caller := $svc.calledBy -}}
{{- if not (hasKey $.Values.services $caller) -}}
{{- $messages = append $messages (printf "services.%s.calledBy: %q is not a service" $name $caller) -}}
{{- end -}}
{{- end -}}
{{- if and (eq $svc.kind "grpc") $svc.database.enabled $.Values.migrations.job (lt (mul (int $svc.probes.startupFailureThreshold) (int $svc.probes.periodSeconds)) (int $.Values.migrations.waitSeconds)) -}}
{{- $messages = append $messages (printf "services.%s.probes: the startup probe gives up after %ds, before migrations.waitSeconds (%v); raise startupFailureThreshold" $name (mul (int $svc.probes.startupFailureThreshold) (int $svc.probes.periodSeconds)) $.Values.migrations.waitSeconds) -}}
{{- end -}}
{{- if and (eq $svc.kind "simulator") (eq $.Values.environment "production") -}}
{{- $messages = append $messages (printf "services.%s: the simulator is a development component; disable it or set environment: development" $name) -}}
{{- end -}}
{{- end -}}
{{- if ne (len $public) 1 -}}
{{- $messages = append $messages (printf "services: exactly one enabled service must be public (the gateway); found %d (%s)" (len $public) (join ", " $public)) -}}
{{- end -}}
{{- if gt $grpcServices 0 -}}
{{- if and (not .Values.encryption.existingSecret) (not .Values.encryption.keys) -}}
{{- $messages = append $messages "encryption: set existingSecret (the Secret holding the keyring) or, for development, keys" -}}
{{- end -}}
{{- if not .Values.encryption.activeKey -}}
{{- $messages = append $messages "encryption.activeKey: name the key id new data is encrypted with" -}}
{{- end -}}
{{- end -}}
{{- if and (not .Values.nats.url) (not .Values.nats.bundled.enabled) -}}
{{- $messages = append $messages "nats: set url (an existing JetStream cluster) or enable nats.bundled" -}}
{{- end -}}
{{- if and .Values.nats.bundled.enabled (not .Values.nats.url) (gt (int .Values.nats.streamReplicas) (int .Values.nats.bundled.replicas)) -}}
{{- $messages = append $messages (printf "nats.streamReplicas (%v) exceeds the bundled servers (%v)" .Values.nats.streamReplicas .Values.nats.bundled.replicas) -}}
{{- end -}}
{{- if and (has "identity" $enabled) -}}
{{- $identity := include "pipworks.service" (dict "root" . "name" "identity") | fromYaml -}}
{{- if not (or (hasKey $identity.secretEnv "PIPWORKS_IDENTITY_SIGNING_KEYS") (hasKey $identity.secretValues "PIPWORKS_IDENTITY_SIGNING_KEYS")) -}}
{{- $messages = append $messages "services.identity.secretEnv.PIPWORKS_IDENTITY_SIGNING_KEYS: the Secret holding the token signing keys is required" -}}
{{- end -}}
{{- if not (index $identity.env "PIPWORKS_IDENTITY_ACTIVE_SIGNING_KEY") -}}
{{- $messages = append $messages "services.identity.env.PIPWORKS_IDENTITY_ACTIVE_SIGNING_KEY: name the key id access tokens are signed with" -}}
{{- end -}}
{{- end -}}
{{- if and .Values.ingress.enabled (eq (len $public) 0) -}}
{{- $messages = append $messages "ingress: enabled, but no public service to route to" -}}
{{- end -}}
{{- if $messages -}}
{{- fail (printf "\n\nVALUES VALIDATION:\n  - %s\n" (join "\n  - " $messages)) -}}
{{- end -}}
{{- end -}}
