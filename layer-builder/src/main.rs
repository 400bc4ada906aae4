fn main() {
    std::process::exit(ldguard_layer::cli::main(std::env::args_os().collect()));
}
