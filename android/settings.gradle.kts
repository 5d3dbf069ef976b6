// The squeeze Android library: `gradle assembleRelease` (AGP 8) builds
// build/outputs/aar/squeeze-release.aar from the Java API in src/main/java
// and the libsqueeze.so files that scripts/build-android.sh puts in
// src/main/jniLibs/<abi>/ (cargo-ndk).
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}

dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral()
    }
}

rootProject.name = "squeeze"
