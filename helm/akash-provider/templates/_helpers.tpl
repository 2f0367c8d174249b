{{/* Names and labels shared by the templates. */}}

{{- define "akash-provider.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name: the release name, with the chart name unless it already holds it. */}}
{{- define "akash-provider.fullname" -}}
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

{{/* Cluster-scoped objects carry the namespace too, so that releases in two namespaces never clash. */}}
{{- define "akash-provider.clusterName" -}}
{{- printf "%s-%s" .Release.Namespace (include "akash-provider.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "akash-provider.tenantName" -}}
{{- printf "%s-tenant" (include "akash-provider.fullname" . | trunc 56 | trimSuffix "-") }}
{{- end }}

{{- define "akash-provider.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "akash-provider.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: akash-provider
{{- end }}

{{/* Selector of the provider's pods. */}}
{{- define "akash-provider.selectorLabels" -}}
app.kubernetes.io/name: {{ include "akash-provider.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: provider
{{- end }}

{{/* Selector of the tenant controller's pods. */}}
{{- define "akash-provider.tenantSelectorLabels" -}}
app.kubernetes.io/name: {{ include "akash-provider.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: tenant
{{- end }}

{{- define "akash-provider.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "akash-provider.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "akash-provider.tenantServiceAccountName" -}}
{{- if .Values.tenant.serviceAccount.create }}
{{- default (include "akash-provider.tenantName" .) .Values.tenant.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.tenant.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Name of the cluster-scoped Provider resource the operator describes itself by. */}}
{{- define "akash-provider.providerResource" -}}
{{- default (include "akash-provider.fullname" .) .Values.provider.name }}
{{- end }}

{{- define "akash-provider.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The chain settings both controllers share. */}}
{{- define "akash-provider.chainEnv" -}}
- name: AKASH_CHAIN_ID
  value: {{ .Values.chain.id | quote }}
- name: AKASH_RPC_URL
  value: {{ required "chain.rpcUrl: the CometBFT RPC endpoint of an Akash node is required" .Values.chain.rpcUrl | quote }}
- name: AKASH_GRPC_URL
  value: {{ required "chain.grpcUrl: the gRPC endpoint of an Akash node is required" .Values.chain.grpcUrl | quote }}
- name: AKASH_GAS_PRICE
  value: {{ .Values.chain.gasPrice | quote }}
- name: AKASH_GAS_ADJUSTMENT
  value: {{ .Values.chain.gasAdjustment | toString | quote }}
- name: AKASH_TX_TIMEOUT
  value: {{ .Values.chain.txTimeout | quote }}
- name: AKASH_POLL_INTERVAL
  value: {{ .Values.chain.pollInterval | quote }}
{{- end }}

{{/* Logging, for both controllers. */}}
{{- define "akash-provider.logEnv" -}}
- name: RUST_LOG
  value: {{ .Values.log.level | quote }}
{{- if eq .Values.log.format "json" }}
- name: AKASH_LOG_FORMAT
  value: json
{{- end }}
{{- end }}

{{/* storage classes as CLASS=SIZE,CLASS=SIZE (AKASH_STORAGE_CLASSES), in name order. */}}
{{/* A map as KEY=VALUE pairs joined by commas (storage classes, node labels). */}}
{{- define "akash-provider.storageClasses" -}}
{{- $pairs := list }}
{{- range $class, $size := . }}
{{- $pairs = append $pairs (printf "%s=%s" $class (toString $size)) }}
{{- end }}
{{- join "," $pairs }}
{{- end }}

{{/* The namespace of the Secrets with tenants' registry credentials. */}}
{{- define "akash-provider.manifestSecretsNamespace" -}}
{{- default (printf "%s-manifests" .Release.Namespace) .Values.manifestSecrets.namespace -}}
{{- end }}
