//! Cases of `spec.port.targetPort`.

use super::*;

#[test]
fn target_port() {
    run_cases(vec![
        (
            "targetPort 1",
            with(|s| s.port = port(IntOrString::Int(1))),
            Expect::Ok,
        ),
        (
            "targetPort 65535",
            with(|s| s.port = port(IntOrString::Int(65535))),
            Expect::Ok,
        ),
        (
            "targetPort \"0\"",
            with(|s| s.port = port(IntOrString::String("0".into()))),
            Expect::Ok,
        ),
        (
            "targetPort \"x\"",
            with(|s| s.port = port(IntOrString::String("x".into()))),
            Expect::Ok,
        ),
        (
            "targetPort 0",
            with(|s| s.port = port(IntOrString::Int(0))),
            Expect::Err(&[
                "spec.port.targetPort: Invalid value: 0: must be a port number between 1 and 65535",
            ]),
        ),
        (
            "targetPort -1",
            with(|s| s.port = port(IntOrString::Int(-1))),
            Expect::Err(&["spec.port.targetPort: Invalid value: -1"]),
        ),
        (
            "targetPort 65536",
            with(|s| s.port = port(IntOrString::Int(65536))),
            Expect::Err(&["spec.port.targetPort: Invalid value: 65536"]),
        ),
        (
            "targetPort empty string",
            with(|s| s.port = port(IntOrString::String(String::new()))),
            Expect::Err(&["spec.port.targetPort: Required value"]),
        ),
    ]);
}
