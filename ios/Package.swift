// swift-tools-version:5.9
// squeeze for Swift: a C module over the library's header (CSqueeze) and a
// thin Swift layer over it (Squeeze).
//
// Here (Linux) CSqueeze is a system library: its module map names
// ffi/include/squeeze.h and links libsqueeze_ffi, which the build finds
// through -L (see scripts/test-swift.sh). For an app, CSqueeze becomes the
// binary target scripts/build-xcframework.sh makes; see README.md.
import PackageDescription

let package = Package(
    name: "Squeeze",
    platforms: [.iOS(.v13), .macOS(.v11)],
    products: [
        .library(name: "Squeeze", targets: ["Squeeze"]),
    ],
    targets: [
        .systemLibrary(name: "CSqueeze", path: "Sources/CSqueeze"),
        .target(name: "Squeeze", dependencies: ["CSqueeze"]),
        .testTarget(name: "SqueezeTests", dependencies: ["Squeeze", "CSqueeze"]),
    ]
)
