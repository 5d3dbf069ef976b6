fn main() {
    std::process::exit(squeeze::cli::main());
}
