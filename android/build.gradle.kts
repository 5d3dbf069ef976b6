plugins {
    id("com.android.library") version "8.5.2"
}

android {
    namespace = "dev.squeeze"
    compileSdk = 34

    defaultConfig {
        minSdk = 24
        // Keeps the JNI natives and SqueezeException(int, String), which
        // the native library looks up by name, in minified apps.
        consumerProguardFiles("consumer-rules.pro")
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    sourceSets {
        getByName("main") {
            // <abi>/libsqueeze.so, from scripts/build-android.sh (cargo-ndk).
            jniLibs.srcDirs("src/main/jniLibs")
        }
    }

    buildTypes {
        release {
            isMinifyEnabled = false
        }
    }

    testOptions {
        unitTests.all {
            // The JVM tests load the host build of the library and the
            // fixtures scripts/test-java.sh makes (run it once first).
            it.useJUnitPlatform()
            it.systemProperty(
                "squeeze.library.path",
                rootDir.resolve("../target/release/libsqueeze_ffi.so").absolutePath,
            )
            it.systemProperty("squeeze.test.dir", rootDir.resolve("../target/java/fixtures").absolutePath)
            it.jvmArgs("--add-opens", "java.base/java.io=ALL-UNNAMED")
        }
    }
}

dependencies {
    testImplementation("org.junit.jupiter:junit-jupiter:5.10.2")
    testRuntimeOnly("org.junit.platform:junit-platform-launcher:1.10.2")
}
