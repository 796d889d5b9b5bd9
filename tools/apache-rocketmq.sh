#!/usr/bin/env bash
# Starts and stops a real, single-host Apache RocketMQ 5 (name server + broker + gRPC proxy) from
# its Maven Central jars, for differential tests, the Apache driver's conformance suite and benches.
#
#   tools/apache-rocketmq.sh start <workdir> [topic[:queues[:fifo]] …]
#       Returns once the name server, the broker and the proxy are ready and the topics exist.
#       Its last line on stdout is `namesrv=<host:port> proxy=<host:port>` (other tools parse it).
#   tools/apache-rocketmq.sh stop <workdir>
#       SIGTERM to every process it started (SIGKILL after 20 s); leaves <workdir>'s logs.
#   tools/apache-rocketmq.sh admin <workdir> <mqadmin sub-command> [args…]
#       Runs Apache's admin tool against that name server, e.g. a FIFO group:
#       `admin <workdir> updateSubGroup -c DefaultCluster -g GroupF -o true`.
#
# The proxy runs in local mode: the broker lives inside the proxy's JVM (as `mqbroker
# --enable-proxy`), so two JVMs instead of three on a 2-core machine. Default ports (name server
# 9876, broker 10911 with 10909 and 10912 beside it, proxy gRPC 8081 and remoting 8080) are used
# when free, else free ones are picked. Picked ports are claimed under $TMPDIR/apache-rocketmq-port-claims
# until bound, so starts running at once never race for one. A FIFO topic is created with
# `+message.type=FIFO`.
#
# APACHE_ROCKETMQ_GRPC_PORT fixes the proxy's gRPC port (a restart in the same workdir, keeping
# the address clients use); the other ports are picked as above.
# ACL: with APACHE_ROCKETMQ_AUTH=<accessKey>:<secretKey> set at `start`, ACL 2.0 (authentication
# and authorization, Apache 5.3) is on in the broker and the proxy, with that account as the initial
# super user; `admin` then signs with it (conf/tools.yml). Add a normal user with
# `admin <workdir> updateUser -u U -p P -t Normal` and grant it with
# `admin <workdir> updateAcl -s User:U -r Topic:T,Group:G -a Pub,Sub -d Allow`.
#
# The jars: `mvn package` of tools/apache-rocketmq/pom.xml copies rocketmq-namesrv and
# rocketmq-proxy (and what they need) into tools/apache-rocketmq/target/lib. Maven caches them in
# ~/.m2, so only the first run on a machine downloads (about 150 MB). ROCKETMQ_VERSION overrides
# the version in the pom.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
POM_DIR="$HERE/apache-rocketmq"
LIB="$POM_DIR/target/lib"
READY_TIMEOUT_S="${APACHE_ROCKETMQ_READY_TIMEOUT_S:-120}"
STOP_TIMEOUT_S=20
HOST=127.0.0.1

# Java 17 needs these for the broker's mapped files (DefaultMappedFile reflects into java.nio and
# casts to sun.nio.ch.DirectBuffer); the stock scripts target Java 8/11 and add none of them.
JOPTS=(
  -XX:+IgnoreUnrecognizedVMOptions -XX:-OmitStackTraceInFastThrow -XX:+UseSerialGC
  --add-opens java.base/java.nio=ALL-UNNAMED --add-exports java.base/sun.nio.ch=ALL-UNNAMED
  --add-opens java.base/jdk.internal.ref=ALL-UNNAMED --add-opens java.base/java.util=ALL-UNNAMED
  --add-opens java.base/java.lang=ALL-UNNAMED -XX:MaxDirectMemorySize=256m
)

die() { echo "apache-rocketmq: $*" >&2; exit 1; }

ensure_jars() {
  if [ -f "$LIB/.complete" ]; then return; fi
  command -v mvn >/dev/null || die "mvn not found (install Maven: apt-get install -y maven)"
  local version_arg=()
  if [ -n "${ROCKETMQ_VERSION:-}" ]; then version_arg=("-Drocketmq.version=$ROCKETMQ_VERSION"); fi
  echo "apache-rocketmq: fetching the Apache RocketMQ jars with Maven (cached in ~/.m2)…" >&2
  mvn -q -B -f "$POM_DIR/pom.xml" "${version_arg[@]}" package >&2 \
    || die "mvn package failed: Apache RocketMQ's jars could not be fetched from Maven Central"
  touch "$LIB/.complete"
}

port_free() { ! (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# Ports picked by a start that has not bound them yet are claimed here, so two starts running at
# once (parallel test files, two terminals) never pick the same free port. A claim is a directory
# (mkdir is atomic) holding the claiming script's pid; a claim whose script is gone is stale.
CLAIMS="${TMPDIR:-/tmp}/apache-rocketmq-port-claims"
claim_port() {
  local dir="$CLAIMS/$1"
  mkdir -p "$CLAIMS"
  if ! mkdir "$dir" 2>/dev/null; then
    local owner
    owner=$(cat "$dir/pid" 2>/dev/null || true)
    if [ -n "$owner" ] && kill -0 "$owner" 2>/dev/null; then return 1; fi
    rm -rf "$dir"
    mkdir "$dir" 2>/dev/null || return 1
  fi
  echo $$ >"$dir/pid"
}
release_claims() {
  local dir
  for dir in "$CLAIMS"/*; do
    [ "$(cat "$dir/pid" 2>/dev/null)" = $$ ] && rm -rf "$dir"
  done
  return 0
}

# The first port from $1 upwards (in steps of 10) for which every offset in $2… is free and
# unclaimed; the ports are claimed until this start has bound them.
pick_port() {
  local base=$1; shift
  local port
  for ((port = base; port < base + 2000; port += 10)); do
    local ok=1 off
    for off in "$@"; do port_free $((port + off)) || { ok=0; break; }; done
    if [ $ok = 1 ] && claim_port "$port"; then
      for off in "$@"; do
        [ "$off" = 0 ] || claim_port $((port + off)) || ok=0
      done
      if [ $ok = 1 ]; then echo "$port"; return; fi
    fi
  done
  die "no free port near $base"
}

# Waits until file $2 holds the line $3 and $HOST:$4 accepts connections, or process $1 dies.
await_ready() {
  local pid=$1 log=$2 pattern=$3 port=$4 name=$5
  local deadline=$((SECONDS + READY_TIMEOUT_S))
  while ((SECONDS < deadline)); do
    kill -0 "$pid" 2>/dev/null || { tail -n 30 "$log" >&2; die "$name exited during start-up (log: $log)"; }
    if grep -q "$pattern" "$log" 2>/dev/null && ! port_free "$port"; then return; fi
    sleep 0.5
  done
  tail -n 30 "$log" >&2
  die "$name not ready after ${READY_TIMEOUT_S}s (log: $log)"
}

java_bg() { # name logback-config heap… -- main args…
  local name=$1 logcfg=$2; shift 2
  local heap=()
  while [ "$1" != -- ]; do heap+=("$1"); shift; done
  shift
  ROCKETMQ_HOME="$WORK/home" nohup java "${JOPTS[@]}" "${heap[@]}" \
    -Duser.home="$WORK" -Drocketmq.home.dir="$WORK/home" \
    -Drmq.logback.configurationFile="$logcfg" -cp "$LIB/*" "$@" >"$WORK/$name.out" 2>&1 &
  echo $! >"$WORK/$name.pid"
}

admin() {
  ROCKETMQ_HOME="$WORK/home" java "${JOPTS[@]}" -Xms64m -Xmx256m -Duser.home="$WORK" \
    -Drmq.logback.configurationFile=rmq.tools.logback.xml -cp "$LIB/*" \
    org.apache.rocketmq.tools.command.MQAdminStartup "$@" -n "$(cat "$WORK/namesrv.addr")"
}

create_topic() { # spec = topic[:queues[:fifo]]
  local topic queues kind
  IFS=: read -r topic queues kind <<<"$1"
  [ -n "$topic" ] || die "empty topic in '$1'"
  queues=${queues:-8}
  local attrs=()
  case "${kind:-}" in
    '') ;;
    fifo | FIFO) attrs=(-a +message.type=FIFO) ;;
    delay | DELAY) attrs=(-a +message.type=DELAY) ;;
    transaction | TRANSACTION) attrs=(-a +message.type=TRANSACTION) ;;
    normal | NORMAL) attrs=(-a +message.type=NORMAL) ;;
    *) die "unknown topic type '$kind' in '$1' (fifo, delay, transaction or normal)" ;;
  esac
  # mqadmin's calls time out after ~2 s: a loaded machine can miss that, so try a few times.
  local out attempt
  for attempt in 1 2 3 4 5; do
    out=$(admin updateTopic -c DefaultCluster -t "$topic" -r "$queues" -w "$queues" "${attrs[@]}" 2>&1) || true
    echo "$out" >>"$WORK/admin.out"
    # mqadmin exits 0 on most failures; its success line is the only reliable signal.
    if grep -q "success" <<<"$out"; then return; fi
    sleep "$attempt"
  done
  echo "$out" | tail -n 20 >&2
  die "creating topic $topic failed"
}

start() {
  ensure_jars
  mkdir -p "$WORK/home" "$WORK/store"
  if [ -f "$WORK/proxy.pid" ] && kill -0 "$(cat "$WORK/proxy.pid")" 2>/dev/null; then
    die "already running in $WORK (stop it first)"
  fi
  local namesrv_port broker_port grpc_port remoting_port
  # The claims last until every JVM has bound its ports (or the start failed).
  trap release_claims EXIT
  namesrv_port=$(pick_port 9876 0)
  broker_port=$(pick_port 10911 -2 0 1)
  # a restart after a crash (fault tests) keeps the proxy's address: its clients reconnect there
  grpc_port=${APACHE_ROCKETMQ_GRPC_PORT:-$(pick_port 8081 0)}
  remoting_port=$(pick_port 8080 0)
  while [ "$remoting_port" = "$grpc_port" ] || ! port_free "$remoting_port"; do
    remoting_port=$(pick_port $((remoting_port + 3)) 0)
  done
  echo "$HOST:$namesrv_port" >"$WORK/namesrv.addr"

  cat >"$WORK/namesrv.conf" <<EOF
listenPort=$namesrv_port
EOF
  cat >"$WORK/broker.conf" <<EOF
brokerClusterName=DefaultCluster
brokerName=broker-a
brokerId=0
brokerRole=ASYNC_MASTER
flushDiskType=ASYNC_FLUSH
namesrvAddr=$HOST:$namesrv_port
brokerIP1=$HOST
listenPort=$broker_port
storePathRootDir=$WORK/store
storePathCommitLog=$WORK/store/commitlog
autoCreateTopicEnable=false
autoCreateSubscriptionGroup=true
enablePropertyFilter=true
timerWheelEnable=true
mappedFileSizeCommitLog=104857600
mappedFileSizeConsumeQueue=600000
transactionTimeOut=3000
transactionCheckInterval=5000
# RecallMessage (5.3): off by default in the broker
recallMessageEnable=true
EOF
  local proxy_auth=''
  rm -f "$WORK/home/conf/tools.yml"
  if [ -n "${APACHE_ROCKETMQ_AUTH:-}" ]; then
    local ak=${APACHE_ROCKETMQ_AUTH%%:*} sk=${APACHE_ROCKETMQ_AUTH#*:}
    [ -n "$ak" ] && [ -n "$sk" ] && [ "$ak" != "$APACHE_ROCKETMQ_AUTH" ] \
      || die "APACHE_ROCKETMQ_AUTH must be <accessKey>:<secretKey>"
    cat >>"$WORK/broker.conf" <<EOF
authenticationEnabled=true
authenticationProvider=org.apache.rocketmq.auth.authentication.provider.DefaultAuthenticationProvider
authenticationMetadataProvider=org.apache.rocketmq.auth.authentication.provider.LocalAuthenticationMetadataProvider
authorizationEnabled=true
authorizationProvider=org.apache.rocketmq.auth.authorization.provider.DefaultAuthorizationProvider
authorizationMetadataProvider=org.apache.rocketmq.auth.authorization.provider.LocalAuthorizationMetadataProvider
initAuthenticationUser={"username":"$ak","password":"$sk"}
innerClientAuthenticationCredentials={"accessKey":"$ak","secretKey":"$sk"}
EOF
    # In local mode the proxy authenticates the gRPC calls and reads users and ACLs from the broker.
    proxy_auth=$(cat <<EOF
, "authenticationEnabled": true, "authorizationEnabled": true,
  "authenticationProvider": "org.apache.rocketmq.auth.authentication.provider.DefaultAuthenticationProvider",
  "authenticationMetadataProvider": "org.apache.rocketmq.proxy.auth.ProxyAuthenticationMetadataProvider",
  "authorizationProvider": "org.apache.rocketmq.auth.authorization.provider.DefaultAuthorizationProvider",
  "authorizationMetadataProvider": "org.apache.rocketmq.proxy.auth.ProxyAuthorizationMetadataProvider",
  "innerClientAuthenticationCredentials": "{\"accessKey\":\"$ak\",\"secretKey\":\"$sk\"}"
EOF
    )
    mkdir -p "$WORK/home/conf"
    printf 'accessKey: %s\nsecretKey: %s\n' "$ak" "$sk" >"$WORK/home/conf/tools.yml"
  fi
  cat >"$WORK/rmq-proxy.json" <<EOF
{ "rocketMQClusterName": "DefaultCluster", "namesrvAddr": "$HOST:$namesrv_port",
  "proxyMode": "local", "grpcServerPort": $grpc_port, "remotingListenPort": $remoting_port$proxy_auth }
EOF

  java_bg namesrv rmq.namesrv.logback.xml -Xms64m -Xmx256m -- \
    org.apache.rocketmq.namesrv.NamesrvStartup -c "$WORK/namesrv.conf"
  await_ready "$(cat "$WORK/namesrv.pid")" "$WORK/namesrv.out" "boot success" "$namesrv_port" "name server"

  java_bg proxy rmq.proxy.logback.xml -Xms256m -Xmx768m -- \
    org.apache.rocketmq.proxy.ProxyStartup -pc "$WORK/rmq-proxy.json" -pm local \
    -bc "$WORK/broker.conf" -n "$HOST:$namesrv_port"
  await_ready "$(cat "$WORK/proxy.pid")" "$WORK/proxy.out" "startup successfully" "$grpc_port" "proxy"
  # The proxy is up before the broker inside it has registered with the name server; topics can
  # be created (and routes served) only after that registration.
  await_ready "$(cat "$WORK/proxy.pid")" "$WORK/logs/rocketmqlogs/broker.log" \
    "Registering current broker to name server completed" "$broker_port" "broker registration"

  local spec
  for spec in "$@"; do create_topic "$spec"; done
  echo "namesrv=$HOST:$namesrv_port proxy=$HOST:$grpc_port"
}

stop() {
  local name pid
  for name in proxy namesrv; do
    [ -f "$WORK/$name.pid" ] || continue
    pid=$(cat "$WORK/$name.pid")
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + STOP_TIMEOUT_S))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$WORK/$name.pid"
  done
}

[ $# -ge 2 ] || die "usage: $0 start|stop|admin <workdir> [args…]"
cmd=$1
mkdir -p "$2"
WORK="$(cd "$2" && pwd)"
shift 2
case "$cmd" in
  start) start "$@" ;;
  stop) stop ;;
  admin) admin "$@" ;;
  *) die "unknown command '$cmd' (start, stop or admin)" ;;
esac
