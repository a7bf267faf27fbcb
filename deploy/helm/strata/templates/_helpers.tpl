{{/* The chart's name. */}}
{{- define "strata.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's prefix for object names. */}}
{{- define "strata.fullname" -}}
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

{{/* Labels of every object; call with (dict "ctx" $ "component" "worker"). */}}
{{- define "strata.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
{{ include "strata.selectorLabels" . }}
{{- end -}}

{{/* Selector labels of a component. */}}
{{- define "strata.selectorLabels" -}}
app.kubernetes.io/name: {{ include "strata.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* The Strata image; `latest` is refused. */}}
{{- define "strata.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if eq $tag "latest" -}}{{- fail "image.tag: pin a version; latest is refused" -}}{{- end -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}

{{/* An image of a map with repository and tag; `latest` is refused. */}}
{{- define "strata.pinnedImage" -}}
{{- if or (not .tag) (eq (toString .tag) "latest") -}}{{- fail (printf "%s: pin a tag; latest is refused" .repository) -}}{{- end -}}
{{- printf "%s:%s" .repository (toString .tag) -}}
{{- end -}}

{{/* The in-chart etcd's headless service. */}}
{{- define "strata.etcdHeadless" -}}
{{- printf "%s-etcd-headless" (include "strata.fullname" .) -}}
{{- end -}}

{{/* The URL scheme of etcd. */}}
{{- define "strata.etcdScheme" -}}
{{- if and .Values.tls.enabled (not .Values.tls.insecure) }}https{{ else }}http{{ end -}}
{{- end -}}

{{/* The etcd endpoints, comma-separated. */}}
{{- define "strata.etcdEndpoints" -}}
{{- if .Values.etcd.enabled -}}
{{- $full := include "strata.fullname" . -}}
{{- $headless := include "strata.etcdHeadless" . -}}
{{- $scheme := include "strata.etcdScheme" . -}}
{{- $eps := list -}}
{{- range $i := until (int .Values.etcd.replicas) -}}
{{- $eps = append $eps (printf "%s://%s-etcd-%d.%s.%s.svc.%s:2379" $scheme $full $i $headless $.Release.Namespace $.Values.clusterDomain) -}}
{{- end -}}
{{- join "," $eps -}}
{{- else -}}
{{- if not .Values.etcd.external.endpoints -}}{{- fail "etcd.enabled is false: set etcd.external.endpoints" -}}{{- end -}}
{{- join "," .Values.etcd.external.endpoints -}}
{{- end -}}
{{- end -}}

{{/* The coordinator's service DNS name (what clients dial). */}}
{{- define "strata.coordinatorHost" -}}
{{- printf "%s-coordinator.%s.svc" (include "strata.fullname" .) .Release.Namespace -}}
{{- end -}}

{{/* The names the node certificate must carry (SANs). */}}
{{- define "strata.nodeHosts" -}}
{{- $hosts := list "localhost" "127.0.0.1" (include "strata.coordinatorHost" .) (printf "*.%s.pod.%s" .Release.Namespace .Values.clusterDomain) -}}
{{- if .Values.etcd.enabled -}}
{{- $hosts = append $hosts (printf "*.%s.%s.svc.%s" (include "strata.etcdHeadless" .) .Release.Namespace .Values.clusterDomain) -}}
{{- end -}}
{{- $quoted := list -}}
{{- range $hosts }}{{ $quoted = append $quoted (squote .) }}{{ end -}}
{{- join " " $quoted -}}
{{- end -}}

{{/* Arguments every strata process takes before its command. */}}
{{- define "strata.globalArgs" -}}
- --config=/etc/strata/strata.yaml
- --certs-dir=/etc/strata/certs
{{- if .Values.tls.insecure }}
- --insecure
{{- end }}
{{- end -}}

{{/* Volume mounts of the config file, certificates and data dir; call with
(dict "ctx" $ "clusterKey" bool). */}}
{{- define "strata.commonMounts" -}}
- name: config
  mountPath: /etc/strata/strata.yaml
  subPath: strata.yaml
  readOnly: true
{{- if .ctx.Values.tls.enabled }}
- name: certs
  mountPath: /etc/strata/certs
  readOnly: true
{{- end }}
{{- if .clusterKey }}
- name: cluster-key
  mountPath: /etc/strata/cluster-key
  readOnly: true
{{- end }}
- name: data
  mountPath: /var/lib/strata
- name: tmp
  mountPath: /tmp
{{- end -}}

{{/* Volumes for strata.commonMounts; call with (dict "ctx" $ "secret" NAME
"clusterKey" bool). */}}
{{- define "strata.commonVolumes" -}}
- name: config
  configMap:
    name: {{ include "strata.fullname" .ctx }}-config
{{- if .ctx.Values.tls.enabled }}
- name: certs
  secret:
    secretName: {{ .secret }}
    defaultMode: 0440
{{- end }}
{{- if .clusterKey }}
- name: cluster-key
  secret:
    secretName: {{ .ctx.Values.tls.nodeSecret }}
    defaultMode: 0440
    items:
      - key: cluster.key
        path: cluster.key
{{- end }}
- name: tmp
  emptyDir: {}
{{- end -}}

{{/* Environment of every strata process; call with (dict "ctx" $
"clusterKey" bool). */}}
{{- define "strata.commonEnv" -}}
- name: POD_NAME
  valueFrom: {fieldRef: {fieldPath: metadata.name}}
- name: POD_NAMESPACE
  valueFrom: {fieldRef: {fieldPath: metadata.namespace}}
- name: NODE_NAME
  valueFrom: {fieldRef: {fieldPath: spec.nodeName}}
{{- if .clusterKey }}
- name: STRATA_TLS_CLUSTER_KEY_FILE
  value: /etc/strata/cluster-key/cluster.key
{{- end }}
{{- end -}}

{{/* Probes of a strata daemon: TCP on tcpPort, or /healthz and /readyz on
httpPort with healthEndpoints; call with (dict "ctx" $ "tcpPort" N "httpPort" N). */}}
{{- define "strata.probes" -}}
{{- if .ctx.Values.healthEndpoints }}
startupProbe:
  httpGet: {path: /healthz, port: {{ .httpPort }}}
  periodSeconds: 5
  failureThreshold: 60
livenessProbe:
  httpGet: {path: /healthz, port: {{ .httpPort }}}
  periodSeconds: 10
  timeoutSeconds: 5
  failureThreshold: 6
readinessProbe:
  httpGet: {path: /readyz, port: {{ .httpPort }}}
  periodSeconds: 5
  timeoutSeconds: 5
{{- else }}
startupProbe:
  tcpSocket: {port: {{ .tcpPort }}}
  periodSeconds: 5
  failureThreshold: 60
livenessProbe:
  tcpSocket: {port: {{ .tcpPort }}}
  periodSeconds: 10
  timeoutSeconds: 5
  failureThreshold: 6
readinessProbe:
  tcpSocket: {port: {{ .tcpPort }}}
  periodSeconds: 5
  timeoutSeconds: 5
{{- end }}
{{- end -}}

{{/* Image pull secrets. */}}
{{- define "strata.pullSecrets" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* A Kubernetes quantity (4Gi) as a Strata size (4GiB). */}}
{{- define "strata.size" -}}
{{- $s := toString . -}}
{{- if hasSuffix "i" $s -}}{{ $s }}B{{- else -}}{{ $s }}{{- end -}}
{{- end -}}
