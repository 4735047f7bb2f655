#!/usr/bin/env bash
# Runs the client smoke tests in test/smoke (kafka-python, confluent-kafka,
# kafkajs; boto3 and the aws CLI on the Kinesis door) against a freshly
# started braid built from this checkout. Each script prints its client's
# version and exits non-zero on any failed check; each is killed after 60 s
# (they stop themselves after 55 s; the aws CLI's: 120 and 110), so a hang
# fails the run instead of stalling it.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
trap stop_braid EXIT
# The Kinesis door checks SigV4 signatures with this key pair, so every AWS
# client below signs its requests as it would against AWS.
export AWS_ACCESS_KEY_ID=AKIDBRAIDSMOKE AWS_SECRET_ACCESS_KEY=braid-smoke-secret AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
mkdir -p "$work"
echo "$AWS_ACCESS_KEY_ID $AWS_SECRET_ACCESS_KEY" >"$work/kinesis-credentials"
start_braid --kinesis-credentials "$work/kinesis-credentials"

status=0
passed=0
failed=0
run() {
  echo "smoke: $1"
  if timeout -k 5 "${run_timeout:-60}" "${@:2}"; then
    passed=$((passed + 1))
  else
    echo "smoke: $1 FAILED"; status=1; failed=$((failed + 1))
  fi
}
# Debian's packages live under /usr/bin/python3, not a pyenv shim.
run kafka-python /usr/bin/python3 "$root/test/smoke/smoke_kafka_python.py" "127.0.0.1:$port"
run confluent-kafka /usr/bin/python3 "$root/test/smoke/smoke_confluent_kafka.py" "127.0.0.1:$port"
cp "$root/test/smoke/package.json" "$root/test/smoke/smoke_kafkajs.js" "$root/test/smoke/smoke_kinesis_js.js" "$work/"
if (cd "$work" && timeout -k 5 300 npm install --no-audit --no-fund --silent >/dev/null); then
  run kafkajs node "$work/smoke_kafkajs.js" "127.0.0.1:$port"
  # --no-warnings: the SDK warns on every run that later releases need node 22.
  run kinesis-js node --no-warnings "$work/smoke_kinesis_js.js" "127.0.0.1:$kport" "127.0.0.1:$hport"
else
  echo "smoke: kafkajs, kinesis-js FAILED: npm install of test/smoke/package.json failed"; status=1; failed=$((failed + 2))
fi
# The Kinesis door through boto3 and the aws CLI (signed with the key pair
# above). Each aws command starts a CLI of about a second of CPU, so that
# script gets 120 s (it stops itself after 110 s).
run kinesis-boto3 /usr/bin/python3 "$root/test/smoke/smoke_kinesis_boto3.py" "127.0.0.1:$kport"
run_timeout=120 run kinesis-awscli bash "$root/test/smoke/smoke_kinesis_awscli.sh" "127.0.0.1:$kport"
if [ $status -ne 0 ]; then
  echo "last braid log lines:"; tail -40 "$work/braid.log"
fi
echo "smoke: $passed passed, $failed failed"
exit $status
