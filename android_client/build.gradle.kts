// Root of the FedMef Android build: plugins are declared here once and applied in the modules.
plugins {
    alias(libs.plugins.android.application) apply false
}
