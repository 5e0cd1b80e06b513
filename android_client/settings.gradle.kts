// FedMef Android client as a Gradle build (opens in Android Studio): the app and the plain-Java
// core it is built on. The core keeps its Maven build (pom.xml, CI on the JVM); here it is built
// again from the same sources by core/build.gradle.kts.
//
// One source of truth for the core's dependency versions: the <properties> of android_client/pom.xml
// are read below into the version catalog `pom` (libs.versions.toml holds only what Maven does not build).

import javax.xml.parsers.DocumentBuilderFactory

pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}

/** The <properties> of a Maven pom, by name. */
fun mavenProperties(pom: File): Map<String, String> {
    val document = DocumentBuilderFactory.newInstance().newDocumentBuilder().parse(pom)
    val properties = document.getElementsByTagName("properties").item(0)
        ?: error("$pom has no <properties>")
    val out = mutableMapOf<String, String>()
    val children = properties.childNodes
    for (i in 0 until children.length) {
        val node = children.item(i)
        if (node.nodeType == org.w3c.dom.Node.ELEMENT_NODE) {
            out[node.nodeName] = node.textContent.trim()
        }
    }
    return out
}

dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral()
    }
    versionCatalogs {
        create("pom") {
            val maven = mavenProperties(file("pom.xml"))
            fun pinned(name: String) = maven[name] ?: error("android_client/pom.xml has no <$name>")
            version("flwr", pinned("flwr.version"))
            version("protobuf", pinned("protobuf.version"))
            version("okhttp", pinned("okhttp.version"))
            version("onnxruntime", pinned("onnxruntime.version"))
            version("gson", pinned("gson.version"))
            version("junit", pinned("junit.version"))
            library("protobuf-javalite", "com.google.protobuf", "protobuf-javalite").versionRef("protobuf")
            library("okhttp", "com.squareup.okhttp3", "okhttp").versionRef("okhttp")
            library("mockwebserver", "com.squareup.okhttp3", "mockwebserver").versionRef("okhttp")
            library("gson", "com.google.code.gson", "gson").versionRef("gson")
            library("junit-jupiter", "org.junit.jupiter", "junit-jupiter").versionRef("junit")
            // the JVM build of ONNX Runtime (core compiles against it; its tests run it) and the
            // Android build of the same release (the app ships it): one ai.onnxruntime API
            library("onnxruntime-jvm", "com.microsoft.onnxruntime", "onnxruntime").versionRef("onnxruntime")
            library("onnxruntime-android", "com.microsoft.onnxruntime", "onnxruntime-android").versionRef("onnxruntime")
        }
    }
}

rootProject.name = "fedmef-android"
include(":core")
include(":app")
