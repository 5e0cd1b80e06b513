#!/usr/bin/env bash
# The Android app end to end on an emulator: a real SuperLink and the real FedMef ServerApp on
# this machine, the app's node (ONNX Runtime backend) on an Android 14 emulator reaching the
# SuperLink through `adb reverse`, two training rounds, then checks on both sides.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: android_client/scripts/emulator-flow.sh [options]

Runs the FedMef Android app against a local federation, end to end:
  1. writes demo partitions (python -m fedmef.partitions) into app/src/main/assets/partitions/
  2. builds the app and its test APK (./gradlew :app:assembleDebug :app:assembleDebugAndroidTest)
  3. creates and boots an emulator (system-images;android-34;google_apis;x86_64, headless,
     -gpu swiftshader_indirect), unless --serial names a running device
  4. starts flower-superlink --insecure on 127.0.0.1:PORT and `adb reverse tcp:PORT tcp:PORT`
  5. installs both APKs and starts the instrumented test TwoRoundsTest (the node joins)
  6. once the node is active, runs the federation: python -m server.launch --superlink
     127.0.0.1:PORT --insecure num-rounds=2 clients-per-round=1 local-epochs=1 backend=ort
  7. checks: the test passed (2 train rounds counted by the node itself) and the server's run
     directory has metrics.csv with 2 rounds, each aggregated from >= 1 client, no failures
Everything it started is stopped on exit (emulator, SuperLink, adb reverse, instrumentation).

Needs: ANDROID_HOME with cmdline-tools (sdkmanager, avdmanager), emulator and platform-tools
(installed by sdkmanager when missing), KVM for the x86_64 emulator, JDK 17, the Gradle wrapper
jar (see android_client/README.md) and the repository's .venv (make setup).

Options:
  --serial SERIAL     use this running device/emulator instead of creating one
  --avd NAME          AVD name (default: fedmef-api34), created when missing
  --port PORT         SuperLink port (default: 9091)
  --partitions N      demo partitions to bundle (default: 2); the node uses p0
  --timeout SECONDS   how long the test waits for two rounds (default: 900)
  --skip-build        reuse the APKs already built
  --keep-emulator     leave the emulator running at the end
  --keep              keep the work directory (logs, run directory) even on success
  -h, --help          this text
EOF
}

SERIAL=""
AVD=fedmef-api34
PORT=9091
PARTITIONS=2
TIMEOUT=900
BUILD=1
KEEP_EMULATOR=0
KEEP=0
while [ $# -gt 0 ]; do
    case "$1" in
        --serial) SERIAL="${2:?--serial needs a value}"; shift 2 ;;
        --avd) AVD="${2:?--avd needs a value}"; shift 2 ;;
        --port) PORT="${2:?--port needs a value}"; shift 2 ;;
        --partitions) PARTITIONS="${2:?--partitions needs a value}"; shift 2 ;;
        --timeout) TIMEOUT="${2:?--timeout needs a value}"; shift 2 ;;
        --skip-build) BUILD=0; shift ;;
        --keep-emulator) KEEP_EMULATOR=1; shift ;;
        --keep) KEEP=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "emulator-flow: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
case "$PORT$PARTITIONS$TIMEOUT" in *[!0-9]*) echo "emulator-flow: --port, --partitions and --timeout take numbers" >&2; exit 2 ;; esac
[ "$PARTITIONS" -ge 1 ] || { echo "emulator-flow: --partitions must be >= 1" >&2; exit 2; }

CLIENT=$(cd "$(dirname "$0")/.." && pwd -P)
REPO=$(cd "$CLIENT/.." && pwd -P)
VENV_BIN="$REPO/.venv/bin"
PYTHON="$VENV_BIN/python"
IMAGE="system-images;android-34;google_apis;x86_64"
APK="$CLIENT/app/build/outputs/apk/debug/app-debug.apk"
TEST_APK="$CLIENT/app/build/outputs/apk/androidTest/debug/app-debug-androidTest.apk"
RUNNER="org.fedmef.app.test/androidx.test.runner.AndroidJUnitRunner"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/fedmef-emulator-flow.XXXXXX")
EMULATOR_PID=""
SUPERLINK_PID=""
INSTRUMENT_PID=""
REVERSED=0
OK=0

say() { printf '\n== %s\n' "$*"; }
die() { echo "emulator-flow: FAILED: $*" >&2; exit 1; }

cleanup() {
    local status=$?
    set +e
    if [ -n "$INSTRUMENT_PID" ] && kill -0 "$INSTRUMENT_PID" 2>/dev/null; then
        kill "$INSTRUMENT_PID"; wait "$INSTRUMENT_PID" 2>/dev/null
    fi
    if [ "$REVERSED" = 1 ]; then
        "$ADB" reverse --remove "tcp:$PORT" >/dev/null 2>&1
    fi
    if [ "$OK" != 1 ] && [ -n "${ANDROID_SERIAL:-}" ] && [ -n "${ADB:-}" ]; then
        "$ADB" logcat -d > "$WORK/logcat.txt" 2>/dev/null
    fi
    if [ -n "$SUPERLINK_PID" ] && kill -0 "$SUPERLINK_PID" 2>/dev/null; then
        kill -TERM -- "-$SUPERLINK_PID" 2>/dev/null # its process group: the SuperLink and its SuperExec
        for _ in $(seq 30); do kill -0 "$SUPERLINK_PID" 2>/dev/null || break; sleep 0.5; done
        kill -KILL -- "-$SUPERLINK_PID" 2>/dev/null
    fi
    if [ -n "$EMULATOR_PID" ] && [ "$KEEP_EMULATOR" != 1 ]; then
        "$ADB" -s "$ANDROID_SERIAL" emu kill >/dev/null 2>&1
        for _ in $(seq 60); do kill -0 "$EMULATOR_PID" 2>/dev/null || break; sleep 0.5; done
        kill -KILL "$EMULATOR_PID" 2>/dev/null
    fi
    if { [ "$OK" = 1 ] && [ "$KEEP" != 1 ]; } || [ -z "$(ls -A "$WORK")" ]; then
        rm -rf "$WORK"
    else
        echo "logs kept in $WORK (superlink.log, server.log, instrument.log, emulator.log, logcat.txt)" >&2
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_for SECONDS DESCRIPTION COMMAND...: polls COMMAND every 2 s
wait_for() {
    local seconds=$1 what=$2
    shift 2
    local deadline=$((SECONDS + seconds))
    until "$@"; do
        [ "$SECONDS" -lt "$deadline" ] || die "timed out after ${seconds} s waiting for $what"
        sleep 2
    done
}

# --- tools --------------------------------------------------------------------------------------
say "checking tools"
SDK="${ANDROID_HOME:-${ANDROID_SDK_ROOT:-}}"
[ -n "$SDK" ] && [ -d "$SDK" ] || die "set ANDROID_HOME to the Android SDK"
find_tool() { # name, candidates...
    local name=$1
    shift
    for candidate in "$@"; do
        [ -x "$candidate" ] && { echo "$candidate"; return; }
    done
    command -v "$name" || true
}
SDKMANAGER=$(find_tool sdkmanager "$SDK/cmdline-tools/latest/bin/sdkmanager" "$SDK/tools/bin/sdkmanager")
AVDMANAGER=$(find_tool avdmanager "$SDK/cmdline-tools/latest/bin/avdmanager" "$SDK/tools/bin/avdmanager")
[ -n "$SDKMANAGER" ] || die "sdkmanager not found: install the Android command-line tools into $SDK/cmdline-tools/latest"
if [ ! -x "$SDK/emulator/emulator" ] || [ ! -x "$SDK/platform-tools/adb" ]; then
    echo "installing emulator and platform-tools with sdkmanager"
    yes | "$SDKMANAGER" --licenses >/dev/null || true
    "$SDKMANAGER" --install emulator platform-tools
fi
EMULATOR="$SDK/emulator/emulator"
ADB="$SDK/platform-tools/adb"
[ -x "$PYTHON" ] && [ -x "$VENV_BIN/flower-superlink" ] || die "no $PYTHON with flwr: run 'make setup' in $REPO"
"$PYTHON" - "$PORT" <<'EOF' || die "something already listens on 127.0.0.1:$PORT (choose another --port)"
import socket, sys
with socket.socket() as s:
    sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) else 1)
EOF
echo "sdk $SDK; adb $ADB; python $PYTHON"

# --- 1. demo partitions, 2. APKs ---------------------------------------------------------------
if [ "$BUILD" = 1 ]; then
    say "1. demo partitions -> app/src/main/assets/partitions/"
    ASSETS="$CLIENT/app/src/main/assets/partitions"
    rm -rf "$ASSETS"
    for ((i = 0; i < PARTITIONS; i++)); do
        (cd "$REPO" && "$PYTHON" -m fedmef.partitions "$ASSETS/p$i" --partition-id "$i" --num-partitions "$PARTITIONS")
    done

    say "2. ./gradlew :app:assembleDebug :app:assembleDebugAndroidTest"
    [ -f "$CLIENT/gradle/wrapper/gradle-wrapper.jar" ] \
        || die "gradle/wrapper/gradle-wrapper.jar is missing: run 'gradle wrapper --gradle-version 8.14.3' in $CLIENT (README)"
    (cd "$CLIENT" && ./gradlew --console=plain -Pfedmef.python="$PYTHON" :app:assembleDebug :app:assembleDebugAndroidTest)
fi
[ -f "$APK" ] && [ -f "$TEST_APK" ] || die "APKs not found ($APK, $TEST_APK): build without --skip-build"

# --- 3. device ---------------------------------------------------------------------------------
if [ -n "$SERIAL" ]; then
    say "3. using device $SERIAL"
    export ANDROID_SERIAL="$SERIAL"
    "$ADB" get-state >/dev/null 2>&1 || die "device $SERIAL is not connected"
else
    say "3. emulator $AVD ($IMAGE)"
    [ -n "$AVDMANAGER" ] || die "avdmanager not found next to sdkmanager"
    if [ ! -d "$SDK/system-images/android-34/google_apis/x86_64" ]; then
        yes | "$SDKMANAGER" --licenses >/dev/null || true
        "$SDKMANAGER" --install "$IMAGE"
    fi
    if ! "$EMULATOR" -list-avds | grep -qx "$AVD"; then
        echo no | "$AVDMANAGER" create avd --name "$AVD" --package "$IMAGE" --force >/dev/null
    fi
    CONSOLE=""
    for candidate in $(seq 5580 2 5680); do # a console port no running emulator uses
        if ! "$ADB" devices | grep -q "^emulator-$candidate\b"; then CONSOLE=$candidate; break; fi
    done
    [ -n "$CONSOLE" ] || die "no free emulator console port"
    export ANDROID_SERIAL="emulator-$CONSOLE"
    "$EMULATOR" -avd "$AVD" -port "$CONSOLE" -no-window -gpu swiftshader_indirect -no-snapshot -no-audio \
        -no-boot-anim > "$WORK/emulator.log" 2>&1 &
    EMULATOR_PID=$!
    echo "emulator pid $EMULATOR_PID, serial $ANDROID_SERIAL"
    booted() {
        kill -0 "$EMULATOR_PID" 2>/dev/null || die "the emulator exited (see $WORK/emulator.log)"
        [ "$("$ADB" shell getprop sys.boot_completed 2>/dev/null | tr -d '\r')" = 1 ]
    }
    wait_for 600 "the emulator to boot" booted
    "$ADB" shell input keyevent 82 >/dev/null 2>&1 || true # unlock the screen
fi

# --- 4. SuperLink ------------------------------------------------------------------------------
say "4. flower-superlink --insecure on 127.0.0.1:$PORT"
mkdir -p "$WORK/flwr" "$WORK/cli"
FLWR_HOME="$WORK/flwr" FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION=1 PATH="$VENV_BIN:$PATH" \
    setsid "$VENV_BIN/flower-superlink" --insecure --disable-runtime-dependency-installation \
    --database :flwr-in-memory: --host 127.0.0.1 --port "$PORT" > "$WORK/superlink.log" 2>&1 < /dev/null &
SUPERLINK_PID=$!
listening() {
    kill -0 "$SUPERLINK_PID" 2>/dev/null || die "flower-superlink exited: $(tail -5 "$WORK/superlink.log")"
    "$PYTHON" -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1', $PORT)))"
}
wait_for 90 "the SuperLink to listen" listening
"$ADB" reverse "tcp:$PORT" "tcp:$PORT" >/dev/null
REVERSED=1

# --- 5. app and test ---------------------------------------------------------------------------
say "5. install the APKs and start TwoRoundsTest"
"$ADB" install -r -t -g "$APK" >/dev/null
"$ADB" install -r -t "$TEST_APK" >/dev/null
"$ADB" shell am instrument -w -r -e class org.fedmef.app.TwoRoundsTest -e superlink "127.0.0.1:$PORT" \
    -e partition p0 -e timeoutSeconds "$TIMEOUT" "$RUNNER" > "$WORK/instrument.log" 2>&1 &
INSTRUMENT_PID=$!
node_active() {
    kill -0 "$INSTRUMENT_PID" 2>/dev/null || die "the test ended before its node joined: $(tail -20 "$WORK/instrument.log")"
    grep -q "Activated node_id" "$WORK/superlink.log"
}
wait_for 300 "the app's node to activate on the SuperLink" node_active
echo "node active: $(grep -m1 -o 'Activated node_id=[0-9]*' "$WORK/superlink.log")"

# --- 6. federation -----------------------------------------------------------------------------
say "6. federation: 2 rounds, 1 client per round"
(cd "$REPO" && FLWR_HOME="$WORK/cli" timeout $((TIMEOUT + 300)) "$PYTHON" -m server.launch \
    --superlink "127.0.0.1:$PORT" --insecure --output-dir "$WORK/runs" \
    num-rounds=2 clients-per-round=1 local-epochs=1 backend=ort) 2>&1 | tee "$WORK/server.log" \
    || die "the federation did not finish (server.log)"

# --- 7. checks ---------------------------------------------------------------------------------
say "7. checks"
wait_for $((TIMEOUT + 120)) "the instrumented test to end" bash -c "! kill -0 $INSTRUMENT_PID 2>/dev/null"
wait "$INSTRUMENT_PID" || true
INSTRUMENT_PID=""
cat "$WORK/instrument.log"
grep -q "^OK (1 test)" "$WORK/instrument.log" || die "TwoRoundsTest did not pass (instrument.log above)"
RUN_DIR=$(sed -n 's/^\[fedmef\] report: \(.*\)\/report\.md$/\1/p' "$WORK/server.log" | tail -1)
[ -n "$RUN_DIR" ] && [ -f "$RUN_DIR/metrics.csv" ] || die "no run directory with metrics.csv in server.log"
"$PYTHON" - "$RUN_DIR/metrics.csv" <<'EOF' || die "the server's run directory does not show two rounds trained by the phone"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
print(f"metrics.csv: {len(rows)} rounds, clients {[r['clients'] for r in rows]}, failures {[r['failures'] for r in rows]}, "
      f"accuracy {[round(float(r['accuracy']), 4) for r in rows]}")
assert len(rows) == 2, "expected 2 rounds"
assert all(int(r["clients"]) >= 1 for r in rows), "a round aggregated no client"
assert all(int(r["failures"]) == 0 for r in rows), "a round had client failures"
EOF
OK=1
echo
echo "emulator-flow: OK: the app's node trained 2 rounds; run directory $RUN_DIR"
if [ "$KEEP" != 1 ]; then
    echo "(the work directory is removed on exit: --keep keeps the run directory and logs)"
fi
