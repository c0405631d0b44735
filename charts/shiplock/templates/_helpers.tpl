{{/*
The shiplock container, env and Job settings mirror what "shiplock kube job"
and "shiplock kube inject" render (package kube/manifest); charts/chart_test.go
compares them so that the two cannot drift apart.
*/}}

{{- define "shiplock.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "shiplock.fullname" -}}
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

{{- define "shiplock.appName" -}}
{{- default (include "shiplock.fullname" .) .Values.app.name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "shiplock.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* The pattern, checked. */}}
{{- define "shiplock.pattern" -}}
{{- $p := .Values.pattern -}}
{{- if not (has $p (list "gate" "job" "init")) -}}
{{- fail (printf "pattern %q: want gate, job or init" $p) -}}
{{- end -}}
{{- $p -}}
{{- end -}}

{{- define "shiplock.mesh" -}}
{{- $m := default "none" .Values.mesh -}}
{{- if not (has $m (list "none" "linkerd" "istio")) -}}
{{- fail (printf "mesh %q: want none, linkerd or istio" $m) -}}
{{- end -}}
{{- if and .Values.nativeSidecar (eq $m "none") -}}
{{- fail "nativeSidecar needs a mesh: set mesh to linkerd or istio" -}}
{{- end -}}
{{- $m -}}
{{- end -}}

{{/* The migration image with its tag: the app's tag unless given. */}}
{{- define "shiplock.image" -}}
{{- $repo := required "image.repository is required: the migration image (shiplock and the migration files)" .Values.image.repository -}}
{{- $tag := .Values.image.tag | default .Values.app.image.tag | default .Chart.AppVersion | toString -}}
{{- if or (contains "@" $repo) (regexMatch ":[^/]*$" $repo) -}}
{{- fail (printf "image.repository %q: give the tag as image.tag, not in the repository" $repo) -}}
{{- end -}}
{{- printf "%s:%s" $repo $tag -}}
{{- end -}}

{{/* The database port a mesh must let through. */}}
{{- define "shiplock.dbPort" -}}
{{- .Values.database.port | default 5432 -}}
{{- end -}}

{{- define "shiplock.secretName" -}}
{{- $s := .Values.database.secret -}}
{{- if $s.create -}}
{{- default (printf "%s-db" (include "shiplock.fullname" .)) $s.name -}}
{{- else -}}
{{- $s.name -}}
{{- end -}}
{{- end -}}

{{/*
The database settings, checked: a host (with a Secret for the user and
password) or a Secret key holding the URL. No value here is a password.
*/}}
{{- define "shiplock.checkDatabase" -}}
{{- $d := .Values.database -}}
{{- $url := or $d.urlSecret.name $d.urlSecret.key -}}
{{- if and $url (not (and $d.urlSecret.name $d.urlSecret.key)) -}}
{{- fail "database.urlSecret needs both name and key" -}}
{{- end -}}
{{- if and $url (or $d.host $d.name) -}}
{{- fail "database.urlSecret cannot be combined with database.host or database.name: the URL names the database" -}}
{{- end -}}
{{- if and (not $url) (not $d.host) -}}
{{- fail "database.host (with database.secret) or database.urlSecret is required" -}}
{{- end -}}
{{- if and (not $url) (not (include "shiplock.secretName" .)) -}}
{{- fail "database.secret.name is required (an existing Secret with the user and password), or database.secret.create" -}}
{{- end -}}
{{- if and $url $d.secret.create -}}
{{- fail "database.secret.create cannot be combined with database.urlSecret" -}}
{{- end -}}
{{- if and $d.sslmode (not (has $d.sslmode (list "disable" "allow" "prefer" "require" "verify-ca" "verify-full"))) -}}
{{- fail (printf "database.sslmode %q: want disable, allow, prefer, require, verify-ca or verify-full" $d.sslmode) -}}
{{- end -}}
{{- end -}}

{{/*
shiplock.dbLabel is the Job label shiplock.dev/database: a hash of the
database's identity (never the credentials), by which "shiplock kube run"
finds a Job already running for the same database.
*/}}
{{- define "shiplock.dbLabel" -}}
{{- $d := .Values.database -}}
{{- if $d.urlSecret.name -}}
{{- printf "secret:%s/%s" $d.urlSecret.name $d.urlSecret.key | sha256sum | trunc 16 -}}
{{- else -}}
{{- printf "postgres://%s:%s/%s" $d.host (include "shiplock.dbPort" . | toString) $d.name | sha256sum | trunc 16 -}}
{{- end -}}
{{- end -}}

{{/*
shiplock.env renders the container's environment; .creds is a dict with
secret, userKey and passwordKey (the migration's or the gate's).
*/}}
{{- define "shiplock.env" -}}
{{- $d := .root.Values.database -}}
- name: SHIPLOCK_DIR
  value: {{ .root.Values.migrationsDir | default "/migrations" | quote }}
{{- if $d.urlSecret.name }}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      key: {{ $d.urlSecret.key | quote }}
      name: {{ $d.urlSecret.name | quote }}
{{- else }}
- name: PGHOST
  value: {{ $d.host | quote }}
{{- if $d.port }}
- name: PGPORT
  value: {{ $d.port | toString | quote }}
{{- end }}
{{- if $d.name }}
- name: PGDATABASE
  value: {{ $d.name | quote }}
{{- end }}
{{- end }}
{{- if $d.sslmode }}
- name: PGSSLMODE
  value: {{ $d.sslmode | quote }}
{{- end }}
{{- if ne $d.requireAuth "any" }}
- name: PGREQUIREAUTH
  value: {{ $d.requireAuth | default "scram-sha-256" | quote }}
{{- end }}
{{- if and .creds.secret (not $d.urlSecret.name) }}
- name: PGUSER
  valueFrom:
    secretKeyRef:
      key: {{ .creds.userKey | default "username" | quote }}
      name: {{ .creds.secret | quote }}
- name: PGPASSWORD
  valueFrom:
    secretKeyRef:
      key: {{ .creds.passwordKey | default "password" | quote }}
      name: {{ .creds.secret | quote }}
{{- end }}
{{- end -}}

{{/*
shiplock.container renders the shiplock container: .name, .args, .creds.
Non-root, read-only, unprivileged: the "restricted" Pod Security Standard.
*/}}
{{- define "shiplock.container" -}}
- name: {{ .name }}
  image: {{ include "shiplock.image" .root | quote }}
{{- with .root.Values.image.pullPolicy }}
  imagePullPolicy: {{ . }}
{{- end }}
  command:
{{- toYaml .root.Values.command | nindent 2 }}
  args:
{{- toYaml .args | nindent 2 }}
  env:
{{- include "shiplock.env" . | nindent 2 }}
  resources:
{{- toYaml .root.Values.resources | nindent 4 }}
  securityContext:
    allowPrivilegeEscalation: false
    capabilities:
      drop:
      - ALL
    readOnlyRootFilesystem: true
    runAsNonRoot: true
    seccompProfile:
      type: RuntimeDefault
  terminationMessagePolicy: FallbackToLogsOnError
{{- end -}}

{{/* The migration's credentials. */}}
{{- define "shiplock.creds" -}}
{{- $s := .Values.database.secret -}}
{{- dict "secret" (include "shiplock.secretName" .) "userKey" $s.userKey "passwordKey" $s.passwordKey | toJson -}}
{{- end -}}

{{/* The gate's credentials: its own Secret, else the migration's. */}}
{{- define "shiplock.gateCreds" -}}
{{- if .Values.gate.secret -}}
{{- dict "secret" .Values.gate.secret "userKey" .Values.gate.userKey "passwordKey" .Values.gate.passwordKey | toJson -}}
{{- else -}}
{{- include "shiplock.creds" . -}}
{{- end -}}
{{- end -}}
