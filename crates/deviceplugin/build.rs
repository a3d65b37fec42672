//! Compiles the vendored device plugin API (v1beta1) with tonic's 0.14 codegen:
//! the Registration service (kubelet side) and the DevicePlugin service
//! (plugin side), both client and server.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/api.proto");
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_protos(&["proto/api.proto"], &["proto"])?;
    Ok(())
}
