{{/*
sts-sidecar named templates.

Every template takes a context whose .Values are THIS chart's values and .Release the release
(Capabilities is optional: it only enables the Kubernetes-version warning in the notes). In a parent chart that
depends on sts-sidecar under the alias stsSidecar, build it once per template file:

  {{- $sts := dict "Values" .Values.stsSidecar "Release" .Release "Capabilities" .Capabilities }}

and call e.g. {{ include "sts-sidecar.initContainers" $sts | nindent 8 }}. Helm merges this chart's
values.yaml defaults into .Values.stsSidecar, and validates them with values.schema.json.

List templates (container, onceContainer, initContainers, sidecarContainers, volumes, appEnv,
appVolumeMounts, env) render YAML list items ("- name: ..."); map templates (podSecurityContext,
securityContext) render mapping keys. None of them ends with a newline: use nindent.
*/}}

{{/* Fixed paths inside the containers. */}}
{{- define "sts-sidecar.tokenDir" -}}/var/run/secrets/sts-sidecar{{- end -}}
{{- define "sts-sidecar.caDir" -}}/etc/sts-sidecar/ca{{- end -}}
{{- define "sts-sidecar.leasesDir" -}}/etc/sts-sidecar/leases{{- end -}}

{{/* Directory of the notify PID file: a shared emptyDir, written by the app, read by the sidecar. */}}
{{- define "sts-sidecar.notifyDir" -}}{{ dir .Values.notify.pidFile }}{{- end -}}

{{/* repository:tag, repository@digest or repository:tag@digest. */}}
{{- define "sts-sidecar.image" -}}
{{ .Values.image.repository }}{{ if .Values.image.tag }}:{{ .Values.image.tag }}{{ end }}{{ if .Values.image.digest }}@{{ .Values.image.digest }}{{ end }}
{{- end -}}

{{/* Effective STS flavour, as the sidecar computes it. */}}
{{- define "sts-sidecar.backend" -}}
{{- if .Values.backend -}}
{{ .Values.backend }}
{{- else if .Values.stsEndpoint -}}
generic
{{- else -}}
aws
{{- end -}}
{{- end -}}

{{- define "sts-sidecar.hasCA" -}}
{{- if or .Values.ca.configMap .Values.ca.secret -}}true{{- end -}}
{{- end -}}

{{/* Name of the ConfigMap holding the named leases' config file (leases). */}}
{{- define "sts-sidecar.leasesConfigMapName" -}}
{{- printf "%s-sts-sidecar-leases" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The sidecar's STS_SIDECAR_CONFIG_FILE with the named leases (JSON): the chart-only key appEnvPrefix is
left out, empty strings are not sent (the sidecar's own defaults apply).
*/}}
{{- define "sts-sidecar.leasesConfigJson" -}}
{{- $leases := list -}}
{{- range .Values.leases -}}
{{- $l := dict "name" .name "bucket" .bucket -}}
{{- if .prefix }}{{- $_ := set $l "prefix" .prefix -}}{{- end -}}
{{- if .actions }}{{- $_ := set $l "actions" .actions -}}{{- end -}}
{{- if .ttlSeconds }}{{- $_ := set $l "ttlSeconds" (int .ttlSeconds) -}}{{- end -}}
{{- if .roleArn }}{{- $_ := set $l "roleArn" .roleArn -}}{{- end -}}
{{- if .sessionName }}{{- $_ := set $l "sessionName" .sessionName -}}{{- end -}}
{{- $leases = append $leases $l -}}
{{- end -}}
{{- toJson (dict "leases" $leases) -}}
{{- end -}}

{{/* A whole ConfigMap manifest with the named leases' config file (emit it from a template file). */}}
{{- define "sts-sidecar.leasesConfigMap" -}}
{{- if .Values.leases -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "sts-sidecar.leasesConfigMapName" . }}
  labels:
    app.kubernetes.io/component: sts-sidecar
data:
  config.json: {{ include "sts-sidecar.leasesConfigJson" . | quote }}
{{- end -}}
{{- end -}}

{{/* Name of the ConfigMap holding the AWS shared config (app.awsConfig.enabled). */}}
{{- define "sts-sidecar.awsConfigMapName" -}}
{{- printf "%s-sts-sidecar-aws-config" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
STS_SIDECAR_* environment of the sidecar. Only names from VARIABLES in src/config/schema.ts
(test/k8s checks it). A context with the key "once" (set by sts-sidecar.onceContainer) switches
the HTTP listener off. Keys are tested with hasKey, not .once, so helm lint --strict
(missingkey=error) does not trip over contexts without them.
*/}}
{{- define "sts-sidecar.env" -}}
{{- $backend := include "sts-sidecar.backend" . -}}
{{- if .Values.leases -}}
{{- if .Values.bucket -}}
{{- fail "sts-sidecar: set bucket or leases, not both (each lease names its own bucket)" -}}
{{- end -}}
{{- range .Values.leases -}}
{{- if and (has $backend (list "aws" "ceph-rgw" "seaweedfs")) (not .roleArn) (not $.Values.roleArn) -}}
{{- fail (printf "sts-sidecar: lease %s: roleArn (or the shared roleArn) is required when the backend is %s" .name $backend) -}}
{{- end -}}
{{- end -}}
{{- else if and (has $backend (list "aws" "ceph-rgw" "seaweedfs")) (not .Values.roleArn) -}}
{{- fail (printf "sts-sidecar: roleArn is required when the backend is %s" $backend) -}}
{{- end -}}
{{- if and .Values.ca.configMap .Values.ca.secret -}}
{{- fail "sts-sidecar: set ca.configMap or ca.secret, not both" -}}
{{- end -}}
{{- if and (eq .Values.sink.type "secret") .Values.app.awsConfig.enabled -}}
{{- fail "sts-sidecar: app.awsConfig.enabled needs sink.type directory: with the Secret sink no credentials.json is written for credential_process to read" -}}
{{- end -}}
- name: STS_SIDECAR_TENANT
  value: {{ required "sts-sidecar: tenant is required" .Values.tenant | quote }}
{{- if .Values.leases }}
- name: STS_SIDECAR_CONFIG_FILE
  value: {{ printf "%s/config.json" (include "sts-sidecar.leasesDir" .) | quote }}
{{- else }}
- name: STS_SIDECAR_BUCKET
  value: {{ required "sts-sidecar: bucket is required" .Values.bucket | quote }}
{{- if .Values.prefix }}
- name: STS_SIDECAR_PREFIX
  value: {{ .Values.prefix | quote }}
{{- end }}
- name: STS_SIDECAR_ACTIONS
  value: {{ join "," .Values.actions | quote }}
- name: STS_SIDECAR_TTL_SECONDS
  value: {{ int .Values.ttlSeconds | quote }}
{{- end }}
- name: STS_SIDECAR_FLEX_AUTH_URL
  value: {{ required "sts-sidecar: flexAuthUrl is required" .Values.flexAuthUrl | quote }}
{{- if .Values.stsEndpoint }}
- name: STS_SIDECAR_STS_ENDPOINT
  value: {{ .Values.stsEndpoint | quote }}
{{- end }}
- name: STS_SIDECAR_STS_REGION
  value: {{ .Values.region | quote }}
{{- if .Values.roleArn }}
- name: STS_SIDECAR_ROLE_ARN
  value: {{ .Values.roleArn | quote }}
{{- end }}
{{- if .Values.sessionName }}
- name: STS_SIDECAR_SESSION_NAME
  value: {{ .Values.sessionName | quote }}
{{- end }}
{{- if .Values.backend }}
- name: STS_SIDECAR_BACKEND
  value: {{ .Values.backend | quote }}
{{- end }}
- name: STS_SIDECAR_TOKEN_FILE
  value: {{ printf "%s/token" (include "sts-sidecar.tokenDir" .) | quote }}
{{- if and .Values.audience .Values.token.verifyAudience }}
- name: STS_SIDECAR_TOKEN_AUDIENCE
  value: {{ .Values.audience | quote }}
{{- end }}
{{- if ne .Values.identity.exchange "none" }}
- name: STS_SIDECAR_IDENTITY_EXCHANGE
  value: {{ .Values.identity.exchange | quote }}
- name: STS_SIDECAR_IDP_TOKEN_URL
  value: {{ required "sts-sidecar: identity.tokenUrl is required when identity.exchange is on" .Values.identity.tokenUrl | quote }}
{{- if .Values.identity.clientId }}
- name: STS_SIDECAR_IDP_CLIENT_ID
  value: {{ .Values.identity.clientId | quote }}
{{- end }}
{{- if .Values.identity.audience }}
- name: STS_SIDECAR_IDP_AUDIENCE
  value: {{ .Values.identity.audience | quote }}
{{- end }}
{{- if .Values.identity.scope }}
- name: STS_SIDECAR_IDP_SCOPE
  value: {{ .Values.identity.scope | quote }}
{{- end }}
{{- end }}
- name: STS_SIDECAR_OUTPUT_DIR
  value: {{ .Values.credentials.mountPath | quote }}
- name: STS_SIDECAR_FILE_MODE
  value: {{ .Values.credentials.fileMode | quote }}
- name: STS_SIDECAR_WIPE_ON_EXIT
  value: {{ .Values.credentials.wipeOnExit | toString | quote }}
{{- if include "sts-sidecar.hasCA" . }}
- name: STS_SIDECAR_CA_FILE
  value: {{ printf "%s/ca.crt" (include "sts-sidecar.caDir" .) | quote }}
{{- end }}
- name: STS_SIDECAR_LISTEN
  value: {{ if hasKey . "once" }}"off"{{ else }}{{ printf "0.0.0.0:%d" (int .Values.port) | quote }}{{ end }}
- name: STS_SIDECAR_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
- name: STS_SIDECAR_READY_MARGIN_SECONDS
  value: {{ int .Values.readyMarginSeconds | quote }}
{{- if and .Values.credentialsEndpoint.enabled (not (hasKey . "once")) }}
- name: STS_SIDECAR_CREDENTIALS_ENDPOINT
  value: {{ printf "127.0.0.1:%d" (int .Values.credentialsEndpoint.port) | quote }}
- name: STS_SIDECAR_CREDENTIALS_ENDPOINT_TOKEN_FILE
  value: {{ printf "%s/token" .Values.credentialsEndpoint.tokenMountPath | quote }}
{{- end }}
{{- if and (not (hasKey . "once")) (or .Values.notify.signal .Values.notify.pidFile) }}
- name: STS_SIDECAR_NOTIFY_SIGNAL
  value: {{ required "sts-sidecar: notify.signal is required with notify.pidFile" .Values.notify.signal | quote }}
- name: STS_SIDECAR_NOTIFY_PID_FILE
  value: {{ required "sts-sidecar: notify.pidFile is required with notify.signal" .Values.notify.pidFile | quote }}
{{- end }}
{{- if and .Values.notify.url (not (hasKey . "once")) }}
- name: STS_SIDECAR_NOTIFY_URL
  value: {{ .Values.notify.url | quote }}
{{- end }}
{{- if and .Values.notify.command (not (hasKey . "once")) }}
- name: STS_SIDECAR_NOTIFY_COMMAND
  value: {{ toJson .Values.notify.command | quote }}
{{- end }}
{{- if eq .Values.sink.type "secret" }}
- name: STS_SIDECAR_SINK
  value: "secret"
- name: STS_SIDECAR_SECRET_NAME
  value: {{ include "sts-sidecar.secretName" . | quote }}
- name: STS_SIDECAR_SECRET_KEYS
  value: {{ join "," .Values.sink.secret.keys | quote }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Hardened container securityContext (mapping). */}}
{{- define "sts-sidecar.securityContext" -}}
runAsNonRoot: true
runAsUser: {{ int .Values.securityContext.runAsUser }}
runAsGroup: {{ int .Values.securityContext.runAsGroup }}
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
privileged: false
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/*
Pod securityContext (mapping) for the pod spec: fsGroup makes the 0440 credential files readable by
every container of the pod (kubelet adds fsGroup to their supplementary groups). Merge your own keys
into it if the pod needs more.
*/}}
{{- define "sts-sidecar.podSecurityContext" -}}
fsGroup: {{ int .Values.securityContext.fsGroup }}
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/*
Pod spec keys (mapping; empty unless needed): shareProcessNamespace when notify.signal is set, so the
sidecar can signal the app. The app container must also run as securityContext.runAsUser (the sidecar
drops every capability, CAP_KILL included) and write its PID into notify.pidFile.
*/}}
{{- define "sts-sidecar.podOptions" -}}
{{- if .Values.notify.signal -}}
shareProcessNamespace: true
{{- end -}}
{{- end -}}

{{/* Mounts of the sidecar itself: token (ro), credential dir (rw), CA (ro). */}}
{{- define "sts-sidecar.sidecarVolumeMounts" -}}
- name: sts-sidecar-token
  mountPath: {{ include "sts-sidecar.tokenDir" . }}
  readOnly: true
- name: sts-sidecar-credentials
  mountPath: {{ .Values.credentials.mountPath }}
{{- if .Values.leases }}
- name: sts-sidecar-leases
  mountPath: {{ include "sts-sidecar.leasesDir" . }}
  readOnly: true
{{- end }}
{{- if .Values.credentialsEndpoint.enabled }}
- name: sts-sidecar-endpoint
  mountPath: {{ .Values.credentialsEndpoint.tokenMountPath }}
{{- end }}
{{- if .Values.notify.signal }}
- name: sts-sidecar-notify
  mountPath: {{ include "sts-sidecar.notifyDir" . }}
  readOnly: true
{{- end }}
{{- if include "sts-sidecar.hasCA" . }}
- name: sts-sidecar-ca
  mountPath: {{ include "sts-sidecar.caDir" . }}
  readOnly: true
{{- end }}
{{- if eq .Values.sink.type "secret" }}
- name: sts-sidecar-kube-api
  mountPath: /var/run/secrets/kubernetes.io/serviceaccount
  readOnly: true
{{- end }}
{{- end -}}

{{/*
The long-running sidecar container (one list item). mode native: restartable init container
(put it under initContainers); mode legacy: a regular container (put it under containers).
*/}}
{{- define "sts-sidecar.container" -}}
- name: {{ .Values.containerName }}
  image: {{ include "sts-sidecar.image" . }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  {{- if eq .Values.mode "native" }}
  restartPolicy: Always
  {{- end }}
  args:
    - run
  env:
    {{- include "sts-sidecar.env" . | nindent 4 }}
  ports:
    - name: sts-http
      containerPort: {{ int .Values.port }}
      protocol: TCP
  startupProbe:
    httpGet:
      path: /readyz
      port: {{ int .Values.port }}
    periodSeconds: {{ int .Values.probes.startup.periodSeconds }}
    failureThreshold: {{ int .Values.probes.startup.failureThreshold }}
    timeoutSeconds: 1
  livenessProbe:
    httpGet:
      path: /healthz
      port: {{ int .Values.port }}
    periodSeconds: {{ int .Values.probes.liveness.periodSeconds }}
    failureThreshold: {{ int .Values.probes.liveness.failureThreshold }}
    timeoutSeconds: 2
  readinessProbe:
    httpGet:
      path: /readyz
      port: {{ int .Values.port }}
    periodSeconds: {{ int .Values.probes.readiness.periodSeconds }}
    failureThreshold: {{ int .Values.probes.readiness.failureThreshold }}
    timeoutSeconds: 2
  resources:
    {{- toYaml .Values.resources | nindent 4 }}
  securityContext:
    {{- include "sts-sidecar.securityContext" . | nindent 4 }}
  volumeMounts:
    {{- include "sts-sidecar.sidecarVolumeMounts" . | nindent 4 }}
{{- end -}}

{{/*
Init-container variant (one list item): runs `once`, writes one credential set and exits 0, or
exits non-zero so the pod does not start without credentials. Used by mode legacy and by Jobs.
*/}}
{{- define "sts-sidecar.onceContainer" -}}
{{- $ctx := dict "Values" .Values "Release" .Release "once" true -}}
- name: {{ printf "%s-init" .Values.containerName | trunc 63 }}
  image: {{ include "sts-sidecar.image" . }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  args:
    - once
  env:
    {{- include "sts-sidecar.env" $ctx | nindent 4 }}
  resources:
    {{- toYaml .Values.resources | nindent 4 }}
  securityContext:
    {{- include "sts-sidecar.securityContext" . | nindent 4 }}
  volumeMounts:
    {{- include "sts-sidecar.sidecarVolumeMounts" . | nindent 4 }}
{{- end -}}

{{/* Items for the pod's initContainers: the native sidecar, or the `once` container (legacy). */}}
{{- define "sts-sidecar.initContainers" -}}
{{- if eq .Values.mode "native" -}}
{{ include "sts-sidecar.container" . }}
{{- else -}}
{{ include "sts-sidecar.onceContainer" . }}
{{- end -}}
{{- end -}}

{{/* Items for the pod's containers: nothing (native), or the `run` sidecar (legacy). */}}
{{- define "sts-sidecar.sidecarContainers" -}}
{{- if eq .Values.mode "legacy" -}}
{{ include "sts-sidecar.container" . }}
{{- end -}}
{{- end -}}

{{/* Projected token audience: the IdP's issuer URL with the identity exchange on, else audience. */}}
{{- define "sts-sidecar.projectedAudience" -}}
{{- if ne .Values.identity.exchange "none" -}}
{{ required "sts-sidecar: identity.tokenAudience (the IdP's issuer URL) is required when identity.exchange is on" .Values.identity.tokenAudience }}
{{- else -}}
{{ .Values.audience }}
{{- end -}}
{{- end -}}

{{/* Pod volumes: projected token, tmpfs credential dir, optional CA and AWS config. */}}
{{- define "sts-sidecar.volumes" -}}
- name: sts-sidecar-token
  projected:
    sources:
      - serviceAccountToken:
          path: token
          expirationSeconds: {{ int .Values.token.expirationSeconds }}
          {{- with include "sts-sidecar.projectedAudience" . }}
          audience: {{ . | quote }}
          {{- end }}
- name: sts-sidecar-credentials
  emptyDir:
    medium: Memory
    sizeLimit: {{ .Values.credentials.sizeLimit }}
{{- if .Values.credentialsEndpoint.enabled }}
- name: sts-sidecar-endpoint
  emptyDir:
    medium: Memory
    sizeLimit: 1Mi
{{- end }}
{{- if .Values.notify.signal }}
- name: sts-sidecar-notify
  emptyDir:
    medium: Memory
    sizeLimit: 1Mi
{{- end }}
{{- if .Values.ca.configMap }}
- name: sts-sidecar-ca
  configMap:
    name: {{ .Values.ca.configMap }}
    items:
      - key: {{ .Values.ca.key }}
        path: ca.crt
{{- else if .Values.ca.secret }}
- name: sts-sidecar-ca
  secret:
    secretName: {{ .Values.ca.secret }}
    items:
      - key: {{ .Values.ca.key }}
        path: ca.crt
{{- end }}
{{- if .Values.app.awsConfig.enabled }}
- name: sts-sidecar-aws-config
  configMap:
    name: {{ include "sts-sidecar.awsConfigMapName" . }}
{{- end }}
{{- if .Values.leases }}
- name: sts-sidecar-leases
  configMap:
    name: {{ include "sts-sidecar.leasesConfigMapName" . }}
{{- end }}
{{- if eq .Values.sink.type "secret" }}
{{- /* What automountServiceAccountToken would give, for the sidecar only: API-server token, CA, namespace. */}}
- name: sts-sidecar-kube-api
  projected:
    sources:
      - serviceAccountToken:
          path: token
          expirationSeconds: 3607
      - configMap:
          name: kube-root-ca.crt
          items:
            - key: ca.crt
              path: ca.crt
      - downwardAPI:
          items:
            - path: namespace
              fieldRef:
                apiVersion: v1
                fieldPath: metadata.namespace
{{- end }}
{{- end -}}

{{/*
Env for app containers: file paths of the credential set, and AWS_CONFIG_FILE. With sink.type secret
no files are written, so no file paths are set (the app reads the Secret; artifactStoreEnv is ignored).
*/}}
{{- define "sts-sidecar.appEnv" -}}
{{- $dir := .Values.credentials.mountPath -}}
{{- if .Values.leases }}
{{- if .Values.app.awsConfig.enabled -}}
{{- fail "sts-sidecar: app.awsConfig.enabled is for a single lease; with leases the sidecar writes the profile file itself (AWS_CONFIG_FILE is set to it)" -}}
{{- end -}}
{{- if ne .Values.sink.type "secret" }}
{{- range .Values.leases }}
{{- if .appEnvPrefix }}
- name: {{ printf "%sACCESS_KEY_REF" .appEnvPrefix }}
  value: {{ printf "%s/%s/access-key" $dir .name | quote }}
- name: {{ printf "%sSECRET_KEY_REF" .appEnvPrefix }}
  value: {{ printf "%s/%s/secret-key" $dir .name | quote }}
- name: {{ printf "%sSESSION_TOKEN_REF" .appEnvPrefix }}
  value: {{ printf "%s/%s/session-token" $dir .name | quote }}
- name: {{ printf "%sCREDENTIAL_EXPIRATION_REF" .appEnvPrefix }}
  value: {{ printf "%s/%s/expiration" $dir .name | quote }}
{{- end }}
{{- end }}
- name: AWS_CONFIG_FILE
  value: {{ printf "%s/aws-config" $dir | quote }}
{{- end }}
{{- if .Values.credentialsEndpoint.enabled }}
- name: AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE
  value: {{ printf "%s/token" .Values.credentialsEndpoint.tokenMountPath | quote }}
{{- end }}
{{- else }}
{{- if and .Values.app.artifactStoreEnv (ne .Values.sink.type "secret") }}
- name: ARTIFACTSTORE_S3_ACCESS_KEY_REF
  value: {{ printf "%s/access-key" $dir | quote }}
- name: ARTIFACTSTORE_S3_SECRET_KEY_REF
  value: {{ printf "%s/secret-key" $dir | quote }}
- name: ARTIFACTSTORE_S3_SESSION_TOKEN_REF
  value: {{ printf "%s/session-token" $dir | quote }}
- name: ARTIFACTSTORE_S3_CREDENTIAL_EXPIRATION_REF
  value: {{ printf "%s/expiration" $dir | quote }}
{{- end }}
{{- if .Values.app.awsConfig.enabled }}
- name: AWS_CONFIG_FILE
  value: {{ printf "%s/config" .Values.app.awsConfig.mountPath | quote }}
- name: AWS_SDK_LOAD_CONFIG
  value: "1"
{{- end }}
{{- if .Values.credentialsEndpoint.enabled }}
- name: AWS_CONTAINER_CREDENTIALS_FULL_URI
  value: {{ printf "http://127.0.0.1:%d/v1/credentials" (int .Values.credentialsEndpoint.port) | quote }}
- name: AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE
  value: {{ printf "%s/token" .Values.credentialsEndpoint.tokenMountPath | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Mounts for app containers: the credential dir read-only (not with sink.type secret: it stays empty), and the AWS config. */}}
{{- define "sts-sidecar.appVolumeMounts" -}}
{{- if ne .Values.sink.type "secret" }}
- name: sts-sidecar-credentials
  mountPath: {{ .Values.credentials.mountPath }}
  readOnly: true
{{- end }}
{{- if .Values.credentialsEndpoint.enabled }}
- name: sts-sidecar-endpoint
  mountPath: {{ .Values.credentialsEndpoint.tokenMountPath }}
  readOnly: true
{{- end }}
{{- if .Values.notify.signal }}
- name: sts-sidecar-notify
  mountPath: {{ include "sts-sidecar.notifyDir" . }}
{{- end }}
{{- if .Values.app.awsConfig.enabled }}
- name: sts-sidecar-aws-config
  mountPath: {{ .Values.app.awsConfig.mountPath }}
  readOnly: true
{{- end }}
{{- end -}}

{{/* A whole ConfigMap manifest with the AWS shared config (emit it from a template file). */}}
{{- define "sts-sidecar.awsConfigMap" -}}
{{- if .Values.app.awsConfig.enabled -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "sts-sidecar.awsConfigMapName" . }}
  labels:
    app.kubernetes.io/component: sts-sidecar
data:
  config: |
    [default]
    region = {{ .Values.region }}
    credential_process = cat {{ .Values.credentials.mountPath }}/credentials.json
    {{- if .Values.app.awsConfig.s3EndpointUrl }}
    endpoint_url = {{ .Values.app.awsConfig.s3EndpointUrl }}
    {{- end }}
{{- end -}}
{{- end -}}

{{/* Text for NOTES.txt: where credentials land, how to check, and risky values. */}}
{{- define "sts-sidecar.notes" -}}
sts-sidecar ({{ .Values.mode }} mode) keeps short-lived S3 credentials for
  tenant {{ .Values.tenant | default "<unset>" }}, bucket {{ .Values.bucket | default "<unset>" }}, prefix {{ .Values.prefix | default "<whole bucket>" | quote }}, actions {{ join "," .Values.actions }}.

{{- if eq .Values.sink.type "secret" }}
Each set is written into the Secret {{ .Release.Namespace }}/{{ include "sts-sidecar.secretName" . }} (keys {{ join ", " .Values.sink.secret.keys }};
one update per rotation); no credential files are written and the app containers mount none. The
Secret is kept on helm uninstall (helm.sh/resource-policy: keep) with the last set in it until it
expires: set credentials.wipeOnExit to clear it when the sidecar stops.
{{- else }}
Credentials are written to {{ .Values.credentials.mountPath }} (tmpfs emptyDir sts-sidecar-credentials,
read-only in app containers): access-key, secret-key, session-token, expiration (RFC 3339) and
credentials.json (AWS credential_process format), mode {{ .Values.credentials.fileMode }}, group {{ int .Values.securityContext.fsGroup }}.
{{- end }}

Check readiness (the image is distroless: no shell or curl inside the sidecar):
  kubectl -n {{ .Release.Namespace }} port-forward pod/<pod> {{ int .Values.port }}:{{ int .Values.port }} &
  curl -fsS http://127.0.0.1:{{ int .Values.port }}/readyz    # 200 = a valid set on disk
  curl -fsS http://127.0.0.1:{{ int .Values.port }}/metrics
{{- if eq .Values.sink.type "secret" }}
  kubectl -n {{ .Release.Namespace }} get secret {{ include "sts-sidecar.secretName" . }} -o jsonpath='{.data.{{ index .Values.sink.secret.keys 3 }}}' | base64 -d
{{- else }}
  kubectl -n {{ .Release.Namespace }} exec <pod> -c <app-container> -- cat {{ .Values.credentials.mountPath }}/expiration
{{- end }}
  kubectl -n {{ .Release.Namespace }} logs <pod> -c {{ .Values.containerName }}
{{- if not .Values.audience }}

WARNING: audience is empty. The projected token then carries the API server's default audience and
  is also accepted by the Kubernetes API; set audience to what flex-auth and the STS expect.
{{- else if not .Values.token.verifyAudience }}

NOTE: token.verifyAudience is false: the sidecar does not check aud before sending the token.
{{- end }}
{{- if gt (int .Values.ttlSeconds) 3600 }}

WARNING: ttlSeconds is {{ int .Values.ttlSeconds }} (> 3600). Leaked credentials stay valid that long; the
  sidecar refreshes well before expiry anyway, so a long lease buys little.
{{- end }}
{{- if has "delete" .Values.actions }}

WARNING: actions include delete. The app can remove objects under {{ .Values.bucket }}/{{ .Values.prefix }}.
{{- end }}
{{- if not .Values.prefix }}

WARNING: prefix is empty: the credentials cover the whole bucket.
{{- end }}
{{- if or (hasPrefix "http://" .Values.flexAuthUrl) (hasPrefix "http://" .Values.stsEndpoint) }}

WARNING: flexAuthUrl or stsEndpoint is plain http://: the service-account token crosses the network
  unencrypted.
{{- end }}
{{- if eq .Values.mode "native" }}
{{- if hasKey . "Capabilities" }}
{{- if semverCompare "<1.29-0" .Capabilities.KubeVersion.Version }}

WARNING: mode native needs Kubernetes >= 1.29 (restartable init containers); this cluster reports
  {{ .Capabilities.KubeVersion.Version }}. Use mode: legacy.
{{- end }}
{{- end }}
{{- else }}

NOTE: mode legacy: a `once` init container plus a regular sidecar container. Do not use it in Jobs
  (the sidecar never exits, so the Job never completes).
{{- end }}
{{- end -}}

{{/* Name of the Secret of sink.type secret. */}}
{{- define "sts-sidecar.secretName" -}}
{{- .Values.sink.secret.name | default (printf "%s-sts-credentials" .Release.Name | trunc 63 | trimSuffix "-") -}}
{{- end -}}

{{/*
Manifests of sink.type secret (emit them from a template file): the Secret, created empty (RBAC cannot
grant create for one name), and a Role allowing get and update on exactly that Secret, bound to the
ServiceAccount named by the context key serviceAccountName.
*/}}
{{- define "sts-sidecar.secretSink" -}}
{{- if eq .Values.sink.type "secret" -}}
{{- $name := include "sts-sidecar.secretName" . -}}
{{- /* Named after the Secret, not the release: two Secret sinks in one release get a Role each. */}}
{{- $role := printf "%s-sts-sidecar" $name | trunc 253 | trimSuffix "-" -}}
{{- /* Named leases: one Secret per lease, <name>-<lease> (what the sidecar writes). */}}
{{- $names := list $name -}}
{{- if .Values.leases -}}
{{- $names = list -}}
{{- range .Values.leases }}{{ $names = append $names (printf "%s-%s" $name .name) }}{{ end -}}
{{- end -}}
{{- range $names }}
apiVersion: v1
kind: Secret
metadata:
  name: {{ . }}
  labels:
    app.kubernetes.io/component: sts-sidecar
  annotations:
    # The sidecar owns the data; helm upgrade must not wipe a live set. helm uninstall keeps it too, with
    # the last set in it until that expires (credentials.wipeOnExit clears it when the sidecar stops).
    helm.sh/resource-policy: keep
type: Opaque
---
{{- end }}
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: {{ $role }}
  labels:
    app.kubernetes.io/component: sts-sidecar
rules:
  - apiGroups: [""]
    resources: ["secrets"]
    resourceNames: [{{ range $i, $n := $names }}{{ if $i }}, {{ end }}{{ $n | quote }}{{ end }}]
    verbs: ["get", "update"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: {{ $role }}
  labels:
    app.kubernetes.io/component: sts-sidecar
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: {{ $role }}
subjects:
  - kind: ServiceAccount
    name: {{ required "sts-sidecar.secretSink: serviceAccountName is required in the context" .serviceAccountName }}
    namespace: {{ .Release.Namespace }}
{{- end -}}
{{- end -}}
