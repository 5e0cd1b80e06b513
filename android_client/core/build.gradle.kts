// Gradle build of fedmef-core for the Android app: the same sources, dependencies and pins as
// core/pom.xml (versions come from android_client/pom.xml through the `pom` catalog, see
// settings.gradle.kts). Differences, both for Android: ONNX Runtime is compileOnly (the app ships
// com.microsoft.onnxruntime:onnxruntime-android, the same ai.onnxruntime API; core's tests run
// the JVM build), and protobuf is `api` (flwr's message classes appear in core's public API).
//
// Flower's protobuf classes are generated as in the Maven build: scripts/flwr_descriptors.py,
// run by the Python that has the pinned flwr (default: the repository's .venv, made by
// `make setup`; or -Pfedmef.python=...), writes flwr's FileDescriptorSet, and protoc (from Maven
// Central, same release as protobuf-javalite) compiles it to lite Java. The Gradle protobuf
// plugin takes .proto sources only, and flwr ships none, hence two Exec tasks.

import javax.xml.parsers.DocumentBuilderFactory

plugins {
    `java-library`
}

java {
    sourceCompatibility = JavaVersion.VERSION_11
    targetCompatibility = JavaVersion.VERSION_11
}

tasks.withType<JavaCompile>().configureEach {
    options.release.set(11) // Android API 26 is the floor: the Maven build checks it with animal-sniffer
    options.encoding = "UTF-8"
}

val protoc: Configuration by configurations.creating

dependencies {
    api(pom.protobuf.javalite)
    implementation(pom.okhttp)
    implementation(pom.gson)
    compileOnly(pom.onnxruntime.jvm)
    protoc("com.google.protobuf:protoc:${pom.versions.protobuf.get()}:${protocClassifier()}@exe")

    testImplementation(pom.onnxruntime.jvm)
    testImplementation(platform("org.junit:junit-bom:${pom.versions.junit.get()}"))
    testImplementation(pom.junit.jupiter)
    testImplementation(pom.mockwebserver)
    testRuntimeOnly("org.junit.platform:junit-platform-launcher")
}

/** protoc's Maven classifier for this machine. */
fun protocClassifier(): String {
    val os = System.getProperty("os.name").lowercase()
    val arch = when (System.getProperty("os.arch")) {
        "aarch64", "arm64" -> "aarch_64"
        else -> "x86_64"
    }
    return when {
        os.contains("mac") -> "osx-$arch"
        os.contains("windows") -> "windows-$arch"
        else -> "linux-$arch"
    }
}

/** The flwr/proto/*.proto files the Maven build compiles: the protoc <argument>s of core/pom.xml. */
fun flwrProtoFiles(): List<String> {
    val arguments = DocumentBuilderFactory.newInstance().newDocumentBuilder().parse(file("pom.xml"))
        .getElementsByTagName("argument")
    return (0 until arguments.length).map { arguments.item(it).textContent.trim() }
        .filter { it.startsWith("flwr/proto/") }
        .ifEmpty { error("core/pom.xml lists no flwr/proto/*.proto argument for protoc") }
}

val flwrVersion: String = pom.versions.flwr.get()
val python: String = providers.gradleProperty("fedmef.python")
    .getOrElse(rootDir.resolve("../.venv/bin/python").normalize().absolutePath)
val descriptorScript = rootDir.resolve("scripts/flwr_descriptors.py")
val descriptorSet = layout.buildDirectory.file("flwr/flwr.desc")
val generatedProto = layout.buildDirectory.dir("generated/sources/flwr-proto/java")
val protocExe = layout.buildDirectory.file("protoc/protoc.exe")

val flwrDescriptors by tasks.registering(Exec::class) {
    description = "Writes the FileDescriptorSet of the pinned flwr (needs Python with flwr $flwrVersion)."
    inputs.file(descriptorScript)
    inputs.property("flwr", flwrVersion)
    outputs.file(descriptorSet)
    executable = python
    args(descriptorScript.absolutePath, descriptorSet.get().asFile.absolutePath, "--flwr-version", flwrVersion)
    doFirst {
        if (!file(python).exists()) {
            throw GradleException("no Python at $python: run `make setup` in the repository, or pass -Pfedmef.python=...")
        }
        descriptorSet.get().asFile.parentFile.mkdirs()
    }
}

val generateFlwrProto by tasks.registering(Exec::class) {
    description = "Compiles flwr's Fleet API messages to protobuf-lite Java classes."
    dependsOn(flwrDescriptors)
    val protoFiles = flwrProtoFiles()
    inputs.file(descriptorSet)
    inputs.files(protoc)
    inputs.property("protoFiles", protoFiles)
    outputs.dir(generatedProto)
    doFirst {
        val exe = protocExe.get().asFile
        exe.parentFile.mkdirs()
        protoc.singleFile.copyTo(exe, overwrite = true)
        exe.setExecutable(true)
        val out = generatedProto.get().asFile
        out.deleteRecursively()
        out.mkdirs()
        executable = exe.absolutePath
        args(listOf("--descriptor_set_in=${descriptorSet.get().asFile.absolutePath}", "--java_out=lite:${out.absolutePath}")
            + protoFiles)
    }
}

sourceSets {
    main {
        java.srcDir(generateFlwrProto)
    }
}

tasks.test {
    useJUnitPlatform()
    val vectors = rootDir.resolve("../tests/vectors").normalize()
    systemProperty("fedmef.vectors", vectors.absolutePath)
    systemProperty("fleet.vectors", vectors.resolve("fleet").absolutePath)
    systemProperty("java.util.logging.SimpleFormatter.format", "%1\$tT %4\$s %3\$s: %5\$s%6\$s%n")
}
