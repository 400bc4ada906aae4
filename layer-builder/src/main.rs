fn main() {
    std::process::exit(ldguard_layer::app::main(std::env::args_os().collect()));
}
