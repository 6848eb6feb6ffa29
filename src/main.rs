fn main() {
    std::process::exit(linger::cli::main());
}
