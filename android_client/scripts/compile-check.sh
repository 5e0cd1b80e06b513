#!/usr/bin/env bash
# Compile check of the Android app without an Android SDK or Gradle: builds fedmef-core with Maven
# (in a temporary copy, so a concurrent build's target/ is left alone), compiles the app's plain-Java
# classes strictly, then every app class (and the instrumented test) against Android's framework
# classes and the AndroidX AARs, checks the app's classes against the Android API 26 signature, and
# runs the app's JVM unit tests.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: android_client/scripts/compile-check.sh [--executorch-src DIR] [--keep] [--help]

Compiles what can be compiled of android_client/app on a plain JDK 17 + Maven machine:
  1. fedmef-core (mvn package, tests skipped) in a temporary copy of android_client/
  2. ONNX Runtime API: onnxruntime-android's classes.jar from Maven Central, else the JVM
     onnxruntime jar (the same ai.onnxruntime API)
  3. ExecuTorch API: executorch-android's classes.jar from Maven Central, else --executorch-src
     (a pytorch/executorch checkout: its Kotlin API is compiled with kotlin-compiler-embeddable
     from Maven Central), else ExecuTorchTrainer and what uses it are NOT compiled (reported)
  4. javac --release 11 -Xlint:all -Werror: the app classes without android/androidx imports
  5. javac: every app class, R (generated from res/ by this script) and androidTest, against
     Robolectric's android-all (the API 35 framework classes, Maven Central) and the AndroidX
     AARs' classes.jar (versions of gradle/libs.versions.toml); skipped with --no-android
  6. the compiled app classes against the Android API level 26 signature (animal-sniffer)
  7. app/src/test/java with JUnit 4
Not covered: resource linking (aapt2), manifest merging, dexing, lint, the Gradle scripts.

Options:
  --executorch-src DIR  pytorch/executorch checkout to take the ExecuTorch Java/Kotlin API from
  --no-android          skip step 5 (android-all is a 186 MB download the first time)
  --keep                keep the work directory (printed at the end)
  --help                this text
Environment: PYTHON (Python with the pinned flwr; default: the repository's .venv/bin/python),
             MVN (default: mvn). Downloads are cached in ~/.m2.
EOF
}

ET_SRC=""
KEEP=0
ANDROID=1
while [ $# -gt 0 ]; do
    case "$1" in
        --executorch-src) ET_SRC="${2:?--executorch-src needs a directory}"; shift 2 ;;
        --keep) KEEP=1; shift ;;
        --no-android) ANDROID=0; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "compile-check: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done

START=$(date +%s)
CLIENT=$(cd "$(dirname "$0")/.." && pwd -P)
REPO=$(cd "$CLIENT/.." && pwd -P)
APP="$CLIENT/app"
PYTHON="${PYTHON:-$REPO/.venv/bin/python}"
MVN="${MVN:-mvn}"
M2="$HOME/.m2/repository"
KOTLIN=2.1.21       # compiles ExecuTorch's Kotlin API from source (only with --executorch-src)
FBJNI=0.7.0         # ExecuTorch's own dependencies (extension/android/executorch_android/build.gradle)
NATIVELOADER=0.10.5
# Android framework classes to compile against: Robolectric's android-all, built from AOSP (API 35)
ANDROID_ALL=org.robolectric:android-all:15-robolectric-13954326
WORK=$(mktemp -d "${TMPDIR:-/tmp}/fedmef-compile-check.XXXXXX")

cleanup() {
    if [ "$KEEP" = 1 ]; then
        echo "work directory kept: $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

say() { printf '\n== %s\n' "$*"; }
die() { echo "compile-check: $*" >&2; exit 1; }

command -v javac >/dev/null || die "javac not found (JDK 17 needed)"
command -v "$MVN" >/dev/null || die "$MVN not found (Maven needed)"
[ -x "$PYTHON" ] || die "no Python at $PYTHON: run 'make setup' in $REPO or set PYTHON"

# --- 1. core ----------------------------------------------------------------------------------
say "1/7 fedmef-core (Maven, in $WORK/client)"
mkdir -p "$WORK/client/core" "$WORK/client/node"
cp "$CLIENT/pom.xml" "$WORK/client/"
cp -r "$CLIENT/scripts" "$WORK/client/"
cp -r "$CLIENT/core/pom.xml" "$CLIENT/core/src" "$WORK/client/core/"
cp "$CLIENT/node/pom.xml" "$WORK/client/node/"   # the reactor reads every module's pom
(cd "$WORK/client" && "$MVN" -B -q -Dpython="$PYTHON" -DskipTests -pl core package \
    && "$MVN" -B -q -pl core dependency:build-classpath -DincludeScope=compile \
        -Dmdep.outputFile="$WORK/core-classpath.txt") > "$WORK/maven.log" 2>&1 \
    || { cat "$WORK/maven.log" >&2; die "Maven could not build fedmef-core"; }
CORE_CP="$WORK/client/core/target/classes:$(cat "$WORK/core-classpath.txt")"
pom_property() { sed -n "s:.*<$1>\(.*\)</$1>.*:\1:p" "$CLIENT/pom.xml" | head -1; }
ORT_VERSION=$(pom_property onnxruntime.version)
ET_VERSION=$(sed -n 's/^executorch *= *"\([^"]*\)".*/\1/p' "$CLIENT/gradle/libs.versions.toml")
echo "core built; onnxruntime $ORT_VERSION (android_client/pom.xml), executorch-android $ET_VERSION (gradle/libs.versions.toml)"

# classes.jar of an AAR from Maven Central, or nothing
aar_classes() { # group artifact version
    local out="$WORK/aar/$2"
    mkdir -p "$out"
    if "$MVN" -B -q org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy \
            -Dartifact="$1:$2:$3:aar" -DoutputDirectory="$out" > "$out.log" 2>&1 \
        && unzip -q -o "$out/$2-$3.aar" classes.jar -d "$out"; then
        echo "$out/classes.jar"
    fi
}

# --- 2. ONNX Runtime API ----------------------------------------------------------------------
say "2/7 ONNX Runtime API"
ORT_CLASSES=$(aar_classes com.microsoft.onnxruntime onnxruntime-android "$ORT_VERSION")
if [ -n "$ORT_CLASSES" ]; then
    ORT_NOTE="onnxruntime-android $ORT_VERSION classes.jar"
    CORE_CP="$ORT_CLASSES:$CORE_CP"
else
    ORT_NOTE="JVM onnxruntime $ORT_VERSION (onnxruntime-android:$ORT_VERSION:aar not reachable; same ai.onnxruntime API)"
fi
echo "$ORT_NOTE"

# --- 3. ExecuTorch API ------------------------------------------------------------------------
say "3/7 ExecuTorch API"
ET_CP=""
ET_CLASSES=$(aar_classes org.pytorch executorch-android "$ET_VERSION")
fetch_jar() { # group:artifact:version -> path in ~/.m2
    "$MVN" -B -q org.apache.maven.plugins:maven-dependency-plugin:3.8.1:get -Dartifact="$1" -Dtransitive=false \
        > "$WORK/get.log" 2>&1 || { cat "$WORK/get.log" >&2; die "cannot fetch $1"; }
    local g a v
    IFS=: read -r g a v <<< "$1"
    echo "$M2/${g//.//}/$a/$v/$a-$v.jar"
}
if [ -n "$ET_CLASSES" ]; then
    ET_NOTE="executorch-android $ET_VERSION classes.jar"
    ET_CP="$ET_CLASSES"
elif [ -n "$ET_SRC" ]; then
    API="$ET_SRC/extension/android/executorch_android/src/main/java/org/pytorch/executorch"
    [ -f "$API/Module.kt" ] || die "$API/Module.kt not found: is $ET_SRC a pytorch/executorch checkout?"
    ET_NOTE="ExecuTorch Kotlin API compiled from $ET_SRC ($(cat "$ET_SRC/version.txt" 2>/dev/null || echo '?'); executorch-android:$ET_VERSION:aar not reachable)"
    mkdir -p "$WORK/kotlinc" "$WORK/et-stub/android/util" "$WORK/et-classes"
    cat > "$WORK/kotlinc/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>
  <groupId>local</groupId><artifactId>kotlinc</artifactId><version>1</version>
  <dependencies>
    <dependency><groupId>org.jetbrains.kotlin</groupId><artifactId>kotlin-compiler-embeddable</artifactId><version>$KOTLIN</version></dependency>
    <dependency><groupId>org.jetbrains</groupId><artifactId>annotations</artifactId><version>13.0</version></dependency>
  </dependencies>
</project>
EOF
    (cd "$WORK/kotlinc" && "$MVN" -B -q dependency:build-classpath -Dmdep.outputFile="$WORK/kotlinc.txt") \
        > "$WORK/kotlinc.log" 2>&1 || { cat "$WORK/kotlinc.log" >&2; die "cannot fetch the Kotlin compiler"; }
    STDLIB=$(fetch_jar "org.jetbrains.kotlin:kotlin-stdlib:$KOTLIN")
    DEPS="$(fetch_jar "com.facebook.fbjni:fbjni-java-only:$FBJNI"):$(fetch_jar "com.facebook.soloader:nativeloader:$NATIVELOADER")"
    # Tensor.kt logs through android.util.Log: a two-method stand-in, used for this compile only
    cat > "$WORK/et-stub/android/util/Log.java" <<'EOF'
package android.util;
public final class Log {
    public static int w(String tag, String msg) { return 0; }
    public static int e(String tag, String msg) { return 0; }
}
EOF
    javac -d "$WORK/et-stub-classes" "$WORK/et-stub/android/util/Log.java"
    KT_SOURCES=()
    for f in DType EValue Tensor Module MethodMetadata ExecuTorchRuntime ExecutorchRuntimeException \
             BackendOptionsMap annotations/Experimental; do
        [ -f "$API/$f.kt" ] && KT_SOURCES+=("$API/$f.kt")
    done
    java -cp "$(cat "$WORK/kotlinc.txt")" org.jetbrains.kotlin.cli.jvm.K2JVMCompiler -no-stdlib -no-reflect \
        -jvm-target 11 -nowarn -cp "$DEPS:$STDLIB:$WORK/et-stub-classes" -d "$WORK/et-classes" "${KT_SOURCES[@]}" \
        || die "the ExecuTorch Kotlin API did not compile"
    ET_CP="$WORK/et-classes:$DEPS:$STDLIB"
else
    ET_NOTE="NOT AVAILABLE (executorch-android:$ET_VERSION:aar not reachable, no --executorch-src)"
fi
echo "$ET_NOTE"

# --- 4. javac ---------------------------------------------------------------------------------
say "4/7 javac --release 11 -Werror (app classes without android/androidx imports)"
cd "$APP"
# without_closure PATTERN FILES...: the files that neither match PATTERN nor use (by simple class
# name) a class of a file left out, repeated until nothing more is left out
EXCLUDED_NAMES=()
without_closure() {
    local pattern=$1
    shift
    local keep=("$@") changed=1
    while [ "$changed" = 1 ]; do
        changed=0
        local next=()
        for f in "${keep[@]}"; do
            local uses=0
            if grep -q "$pattern" "$f"; then
                uses=1
            elif [ ${#EXCLUDED_NAMES[@]} -gt 0 ] && grep -qw -F "${EXCLUDED_NAMES[@]/#/-e}" "$f"; then
                uses=1
            fi
            if [ "$uses" = 1 ]; then
                EXCLUDED_NAMES+=("$(basename "$f" .java)")
                changed=1
            else
                next+=("$f")
            fi
        done
        keep=("${next[@]}")
    done
    printf '%s\n' "${keep[@]}"
}
mapfile -t ALL < <(find src/main/java -name '*.java' | sort)
mapfile -t COMPILED < <(without_closure '^import androidx\?\.' "${ALL[@]}")
if [ -z "$ET_CP" ]; then
    mapfile -t COMPILED < <(without_closure 'org\.pytorch' "${COMPILED[@]}")
fi
NOT_COMPILED=()
EXCLUDED_NAMES=()
for f in "${ALL[@]}"; do
    if ! printf '%s\n' "${COMPILED[@]}" | grep -qxF "$f"; then
        NOT_COMPILED+=("$f")
        EXCLUDED_NAMES+=("$(basename "$f" .java)")
    fi
done
CP="$CORE_CP${ET_CP:+:$ET_CP}"
mkdir -p "$WORK/app-classes" "$WORK/test-classes"
javac --release 11 -Xlint:all -Werror -encoding UTF-8 -d "$WORK/app-classes" -cp "$CP" "${COMPILED[@]}"
printf 'compiled: %s\n' "${COMPILED[@]}"
printf 'not in this step: %s\n' "${NOT_COMPILED[@]}"

cat > "$WORK/r.py" <<'EOF'
"""Writes an R.java with one int per resource name under res/ (compile check only)."""
import pathlib
import re
import sys
import xml.etree.ElementTree as ET

res, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
kinds = {"id": set(), "string": set(), "layout": set(), "style": set(), "xml": set(), "drawable": set()}
for f in sorted(res.rglob("*.xml")):
    folder = f.parent.name.split("-")[0]
    if folder in ("layout", "xml", "drawable"):
        kinds[folder].add(f.stem)
    kinds["id"].update(re.findall(r"@\+id/(\w+)", f.read_text()))
    if folder == "values":
        for e in ET.parse(f).getroot():
            if e.tag in ("string", "style"):
                kinds[e.tag].add(e.get("name").replace(".", "_"))
lines, n = ["package org.fedmef.app;", "public final class R {"], 0x7F000000
for kind, names in kinds.items():
    lines.append(f"    public static final class {kind} {{")
    for name in sorted(names):
        n += 1
        lines.append(f"        public static final int {name} = {n};")
    lines.append("    }")
out.write_text("\n".join(lines + ["}", ""]))
EOF

# --- 5. Android classes -----------------------------------------------------------------------
ANDROID_NOTE="skipped (--no-android)"
ANDROID_COMPILED=()
ANDROID_CP=""
if [ "$ANDROID" = 1 ]; then
    say "5/7 javac: all app classes and androidTest against android-all (API 35) + AndroidX"
    toml() { sed -n "s/^$1 *= *\"\([^\"]*\)\".*/\1/p" "$CLIENT/gradle/libs.versions.toml"; }
    # the catalog's AndroidX libraries, plus the transitive ones javac needs for their signatures
    # (at about the versions Gradle resolves); jars are used as they are, AARs by their classes.jar
    LIBS=("$ANDROID_ALL:jar"
        "androidx.core:core:$(toml androidx-core):aar"
        "androidx.appcompat:appcompat:$(toml androidx-appcompat):aar"
        "androidx.activity:activity:$(toml androidx-activity):aar"
        "androidx.lifecycle:lifecycle-viewmodel-android:$(toml androidx-lifecycle):aar"
        "androidx.lifecycle:lifecycle-livedata:$(toml androidx-lifecycle):aar"
        "androidx.lifecycle:lifecycle-livedata-core:$(toml androidx-lifecycle):aar"
        "androidx.lifecycle:lifecycle-runtime-android:$(toml androidx-lifecycle):aar"
        "androidx.lifecycle:lifecycle-common-jvm:$(toml androidx-lifecycle):jar"
        "androidx.documentfile:documentfile:$(toml androidx-documentfile):aar"
        "androidx.test:core:$(toml androidx-test-core):aar"
        "androidx.test:runner:$(toml androidx-test-runner):aar"
        "androidx.test.ext:junit:$(toml androidx-test-ext-junit):aar"
        "androidx.test:monitor:1.7.1:aar"
        "androidx.fragment:fragment:1.5.4:aar"
        "androidx.savedstate:savedstate-android:1.3.1:aar"
        "androidx.drawerlayout:drawerlayout:1.0.0:aar"
        "androidx.customview:customview:1.0.0:aar"
        "androidx.annotation:annotation-jvm:1.9.1:jar"
        "org.jetbrains.kotlin:kotlin-stdlib:$KOTLIN:jar"
        "junit:junit:4.13.2:jar")
    mkdir -p "$WORK/androidx"
    for lib in "${LIBS[@]}"; do
        IFS=: read -r _ a v t <<< "$lib"
        "$MVN" -B -q org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy -Dartifact="$lib" \
            -DoutputDirectory="$WORK/androidx" > "$WORK/get.log" 2>&1 || { cat "$WORK/get.log" >&2; die "cannot fetch $lib"; }
        if [ "$t" = aar ]; then
            mkdir -p "$WORK/androidx/$a-$v"
            unzip -q -o "$WORK/androidx/$a-$v.aar" classes.jar -d "$WORK/androidx/$a-$v"
            ANDROID_CP="$ANDROID_CP:$WORK/androidx/$a-$v/classes.jar"
        else
            ANDROID_CP="$ANDROID_CP:$WORK/androidx/$a-$v.jar"
        fi
    done
    # R: one int per resource name in res/ (AGP generates the real class; javac only needs the names)
    mkdir -p "$WORK/r"
    "$PYTHON" "$WORK/r.py" src/main/res "$WORK/r/R.java"
    mapfile -t ANDROID_COMPILED < <(find src/main/java -name '*.java' | sort)
    if [ -z "$ET_CP" ]; then
        EXCLUDED_NAMES=()
        mapfile -t ANDROID_COMPILED < <(without_closure 'org\.pytorch' "${ANDROID_COMPILED[@]}")
    fi
    mkdir -p "$WORK/android-classes" "$WORK/android-test-classes"
    # -nowarn: android-all's own annotations warn on every class; lint ran on the plain classes in step 4
    javac --release 11 -nowarn -encoding UTF-8 -d "$WORK/android-classes" -cp "$CP$ANDROID_CP" \
        "${ANDROID_COMPILED[@]}" "$WORK/r/R.java" > "$WORK/javac-android.log" 2>&1 \
        || { grep -v 'UnsupportedAppUsage' "$WORK/javac-android.log" >&2; die "the Android classes did not compile"; }
    find "$WORK/android-classes" \( -name 'R.class' -o -name 'R$*.class' \) -delete
    printf 'compiled: %s\n' "${ANDROID_COMPILED[@]}"
    ANDROID_NOTE="${#ANDROID_COMPILED[@]} app classes against $ANDROID_ALL + AndroidX"
    if [ -n "$ET_CP" ]; then
        mapfile -t ANDROID_TESTS < <(find src/androidTest/java -name '*.java' | sort)
        javac --release 11 -nowarn -encoding UTF-8 -d "$WORK/android-test-classes" \
            -cp "$CP$ANDROID_CP:$WORK/android-classes" "${ANDROID_TESTS[@]}" > "$WORK/javac-android-test.log" 2>&1 \
            || { grep -v 'UnsupportedAppUsage' "$WORK/javac-android-test.log" >&2; die "androidTest did not compile"; }
        printf 'compiled: %s\n' "${ANDROID_TESTS[@]}"
        ANDROID_NOTE="$ANDROID_NOTE, and ${#ANDROID_TESTS[@]} androidTest class(es)"
    fi
fi

# --- 6. Android API 26 ------------------------------------------------------------------------
say "6/7 Android API level 26 signature (animal-sniffer)"
SNIFFER=$(fetch_jar org.codehaus.mojo:animal-sniffer:1.27):$(fetch_jar org.ow2.asm:asm:9.9.1)
SIGNATURE="$M2/net/sf/androidscents/signature/android-api-level-26/8.0.0_r2/android-api-level-26-8.0.0_r2.signature"
if [ ! -f "$SIGNATURE" ]; then
    "$MVN" -B -q org.apache.maven.plugins:maven-dependency-plugin:3.8.1:get \
        -Dartifact=net.sf.androidscents.signature:android-api-level-26:8.0.0_r2:signature > "$WORK/get.log" 2>&1 \
        || die "cannot fetch the Android API 26 signature"
fi
mkdir -p "$WORK/sniff"
cat > "$WORK/sniff/ApiCheck.java" <<'EOF'
import java.io.File;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.util.Enumeration;
import java.util.HashSet;
import java.util.Set;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;
import org.codehaus.mojo.animal_sniffer.SignatureChecker;
import org.codehaus.mojo.animal_sniffer.logging.PrintWriterLogger;

/** Checks class files against an animal-sniffer signature; classes of the given classpath are allowed. */
public class ApiCheck {
    public static void main(String[] args) throws IOException {
        Set<String> allowed = new HashSet<>();
        for (String entry : args[2].split(File.pathSeparator)) {
            collect(new File(entry), "", allowed);
        }
        collect(new File(args[1]), "", allowed);
        try (InputStream signature = new FileInputStream(args[0])) {
            SignatureChecker checker = new SignatureChecker(signature, allowed, new PrintWriterLogger(System.out));
            checker.setSourcePath(java.util.Collections.<File>emptyList());
            checker.process(new File(args[1]));
            if (checker.isSignatureBroken()) {
                System.exit(1);
            }
        }
    }

    private static void collect(File f, String prefix, Set<String> out) throws IOException {
        if (f.isDirectory()) {
            File[] children = f.listFiles();
            for (File c : children == null ? new File[0] : children) {
                collect(c, prefix + c.getName() + (c.isDirectory() ? "/" : ""), out);
            }
        } else if (f.getName().endsWith(".class")) {
            out.add(prefix.substring(0, prefix.length() - ".class".length()));
        } else if (f.getName().endsWith(".jar")) {
            try (ZipFile zip = new ZipFile(f)) {
                for (Enumeration<? extends ZipEntry> e = zip.entries(); e.hasMoreElements();) {
                    String name = e.nextElement().getName();
                    if (name.endsWith(".class")) {
                        out.add(name.substring(0, name.length() - ".class".length()).replaceFirst("^META-INF/versions/\\d+/", ""));
                    }
                }
            }
        }
    }
}
EOF
javac -d "$WORK/sniff" -cp "$SNIFFER" "$WORK/sniff/ApiCheck.java"
# all compiled app classes; the library classes on the classpath are allowed (android-all is not
# on it: android.* must be in the API 26 signature)
CHECKED="$WORK/app-classes"
[ "${#ANDROID_COMPILED[@]}" -gt 0 ] && CHECKED="$WORK/android-classes"
LIBRARIES=$(printf '%s' "$CP$ANDROID_CP" | tr ':' '\n' | grep -v '/android-all-' | paste -sd:)
java -cp "$WORK/sniff:$SNIFFER" ApiCheck "$SIGNATURE" "$CHECKED" "$LIBRARIES" \
    || die "app classes use APIs that Android API 26 lacks (see above)"
echo "API 26: ok ($(find "$CHECKED" -name '*.class' | wc -l) class files)"

# --- 7. unit tests ----------------------------------------------------------------------------
say "7/7 JVM unit tests (app/src/test/java, JUnit 4)"
JUNIT="$(fetch_jar junit:junit:4.13.2):$(fetch_jar org.hamcrest:hamcrest-core:1.3)"
mapfile -t TESTS < <(find src/test/java -name '*.java' | sort)
EXCLUDED_NAMES=() # the unit tests run on the classes of step 4: leave out tests that use the others
for f in "${NOT_COMPILED[@]}"; do
    EXCLUDED_NAMES+=("$(basename "$f" .java)")
done
mapfile -t TESTS < <(without_closure '^import android' "${TESTS[@]}")
javac --release 11 -Xlint:all -encoding UTF-8 -d "$WORK/test-classes" -cp "$CP:$WORK/app-classes:$JUNIT" "${TESTS[@]}"
mapfile -t TEST_CLASSES < <(grep -l '@Test' "${TESTS[@]}" | sed 's:^src/test/java/::; s:\.java$::; s:/:.:g' | sort)
# java.util.logging silenced (an empty configuration): the tests' own failures still print
java -cp "$CP:$WORK/app-classes:$WORK/test-classes:$JUNIT" -Djava.util.logging.config.file=/dev/null \
    org.junit.runner.JUnitCore "${TEST_CLASSES[@]}" > "$WORK/junit.log" 2>&1 || true
cat "$WORK/junit.log"
grep -q '^OK (' "$WORK/junit.log" || die "unit tests failed"

say "summary"
echo "ONNX Runtime API: $ORT_NOTE"
echo "ExecuTorch API:   $ET_NOTE"
echo "Android classes:  $ANDROID_NOTE"
echo "plain Java (step 4, -Werror): ${#COMPILED[@]} of ${#ALL[@]} app classes; unit tests: $(grep '^OK (' "$WORK/junit.log")"
echo "took $(( $(date +%s) - START )) s"
