//! Tests of every value type.

use std::str::FromStr;

use super::duration::MAX_MICROS;
use super::*;

/// Inputs no type may accept.
const HOSTILE: &[&str] = &[
    "",
    " ",
    "\n",
    "\r\n",
    "\0",
    "\"",
    "'",
    "#",
    "%[src]",
    "{{ .Env }}",
    "${HOME}",
    "\\",
    "é",
    "\u{202e}",
    "\u{2028}",
    "10s\n",
    "10s\r\nbackend evil",
    "10s #comment",
    "/a b",
    "/a\0b",
    "/a\"b",
    "roundrobin\n",
    " roundrobin",
    "Lax\r\n",
    "max-age=1\n",
];

fn refuses_all<T: FromStr>(extra: &[&str]) {
    for s in HOSTILE.iter().chain(extra) {
        assert!(s.parse::<T>().is_err(), "accepted {s:?}");
    }
}

fn rendered_is_safe(s: &str) {
    assert!(
        s.bytes()
            .all(|b| (b'!'..=b'~').contains(&b) && !b"\"'#\\".contains(&b)),
        "unsafe rendering {s:?}"
    );
}

#[test]
fn values_duration_units() {
    let cases = [
        ("5000", "5000ms", 5_000_000),
        ("1", "1ms", 1_000),
        ("5000ms", "5000ms", 5_000_000),
        ("1500us", "1500us", 1_500),
        ("30s", "30s", 30_000_000),
        ("2m", "2m", 120_000_000),
        ("1h", "1h", 3_600_000_000),
        ("1d", "1d", 86_400_000_000),
        ("24d", "24d", 24 * 86_400_000_000),
        ("2147483647ms", "2147483647ms", MAX_MICROS),
        ("2147483647000us", "2147483647000us", MAX_MICROS),
    ];
    for (input, shown, micros) in cases {
        let d: Duration = input.parse().unwrap();
        assert_eq!(d.to_string(), shown, "{input}");
        assert_eq!(d.as_micros(), micros, "{input}");
        rendered_is_safe(&d.to_string());
    }
    assert_eq!("1us".parse::<Duration>().unwrap().as_millis_ceil(), 1);
    assert_eq!(
        "30s".parse::<Duration>().unwrap().to_std(),
        std::time::Duration::from_secs(30)
    );
    assert_eq!(Duration::from_millis(5000).to_string(), "5000ms");
    assert_eq!(Duration::from_millis(0).to_string(), "1ms");
    assert_eq!(Duration::from_millis(u64::MAX), Duration::MAX);
}

#[test]
fn values_duration_clipping() {
    for input in [
        "2147483648ms",
        "2147483647001us",
        "24855d",
        "9999999999999999999999999999d",
        "18446744073709551616",
        "99999999999999999999999999999999999999999999999999999us",
    ] {
        let (d, clipped) = Duration::parse_reporting_clip(input).unwrap();
        assert!(clipped, "{input}");
        assert_eq!(d.to_string(), "2147483647ms");
    }
    let (_, clipped) = Duration::parse_reporting_clip("24d").unwrap();
    assert!(!clipped);
    let long = format!("1{}", "0".repeat(100_000));
    assert_eq!(long.parse::<Duration>().unwrap(), Duration::MAX);
}

#[test]
fn values_duration_refused() {
    refuses_all::<Duration>(&[
        "0", "0s", "05s", "00", "-1", "+5", "5x", "5 s", " 5s", "5s ", "5S", "5MS", "5sec", "1.5s",
        "1e3", "s", "ms", "5ss", "5msms", "５s", "5s\0", "0x10",
    ]);
    let e = "5x".parse::<Duration>().unwrap_err();
    assert_eq!(e.kind(), ValueKind::Duration);
    assert!(e
        .to_string()
        .starts_with("expected <digits>[us|ms|s|m|h|d]"));
}

#[test]
fn values_cookie_name() {
    for ok in [
        "a",
        "SESSION",
        "my_cookie",
        "2-edge_cookie",
        "_reen-cookie3",
        "A-Z_09",
    ] {
        let c: CookieName = ok.parse().unwrap();
        assert_eq!(c.to_string(), ok);
        rendered_is_safe(c.as_str());
    }
    let max = "a".repeat(255);
    assert!(max.parse::<CookieName>().is_ok());
    refuses_all::<CookieName>(&[
        "a=b",
        "a;b",
        "a b",
        "a.b",
        "a,b",
        "a:b",
        "a/b",
        "a%b",
        "ä",
        "a\tb",
        &"a".repeat(256),
    ]);
    assert!("x y"
        .parse::<CookieName>()
        .unwrap_err()
        .rule()
        .contains("A-Z a-z 0-9 _ -"));
}

#[test]
fn values_same_site() {
    for (input, out) in [
        ("Strict", SameSite::Strict),
        ("strict", SameSite::Strict),
        ("LAX", SameSite::Lax),
        ("Lax", SameSite::Lax),
        ("None", SameSite::None),
        ("nOnE", SameSite::None),
    ] {
        assert_eq!(input.parse::<SameSite>().unwrap(), out);
    }
    assert_eq!(SameSite::Lax.to_string(), "Lax");
    refuses_all::<SameSite>(&["Laxx", "La x", "Strict;", "none\0", "Ｌax"]);
}

#[test]
fn values_balance() {
    for s in ["roundrobin", "leastconn", "source", "random"] {
        assert_eq!(s.parse::<Balance>().unwrap().to_string(), s);
    }
    refuses_all::<Balance>(&[
        "RoundRobin",
        "first",
        "uri",
        "hdr(host)",
        "random(2)",
        "roundrobin leastconn",
        "source\tx",
        "static-rr",
    ]);
}

#[test]
fn values_forwarded_policy() {
    for s in ["append", "replace", "never", "if-none"] {
        assert_eq!(s.parse::<ForwardedPolicy>().unwrap().to_string(), s);
    }
    assert_eq!(ForwardedPolicy::default(), ForwardedPolicy::Append);
    refuses_all::<ForwardedPolicy>(&["Append", "ifnone", "if_none", "always"]);
}

#[test]
fn values_positive_int() {
    for (input, n) in [
        ("1", 1),
        ("10", 10),
        ("007", 7),
        ("2147483647", 2_147_483_647),
    ] {
        assert_eq!(input.parse::<PositiveInt>().unwrap().get(), n);
    }
    assert_eq!("007".parse::<PositiveInt>().unwrap().to_string(), "7");
    let many_zeros = format!("{}5", "0".repeat(10_000));
    assert_eq!(many_zeros.parse::<PositiveInt>().unwrap().get(), 5);
    refuses_all::<PositiveInt>(&[
        "0",
        "000",
        "-1",
        "+1",
        "1.0",
        "1e3",
        "2147483648",
        "4294967296",
        "99999999999999999999",
        "1 ",
        "0x10",
        "١",
    ]);
    assert_eq!(PositiveInt::new(0), None);
    assert_eq!(PositiveInt::new(u32::MAX), None);
}

#[test]
fn values_bool() {
    for t in ["1", "t", "T", "TRUE", "true", "True"] {
        assert_eq!(parse_bool(t), Ok(true));
    }
    for f in ["0", "f", "F", "FALSE", "false", "False"] {
        assert_eq!(parse_bool(f), Ok(false));
    }
    for bad in ["", "yes", "no", "tRuE", "on", " true", "true\n", "2"] {
        assert!(parse_bool(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn values_ip_network() {
    let cases = [
        ("10.0.0.1", "10.0.0.1"),
        ("10.0.0.1/32", "10.0.0.1"),
        ("10.0.0.0/8", "10.0.0.0/8"),
        ("10.1.2.3/8", "10.1.2.3/8"),
        ("0.0.0.0/0", "0.0.0.0/0"),
        ("::/0", "::/0"),
        ("::1", "::1"),
        ("2001:DB8::1/64", "2001:db8::1/64"),
        ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("fe80::1/128", "fe80::1"),
        ("::ffff:10.0.0.1", "::ffff:10.0.0.1"),
    ];
    for (input, shown) in cases {
        let n: IpNetwork = input.parse().unwrap();
        assert_eq!(n.to_string(), shown, "{input}");
        rendered_is_safe(&n.to_string());
    }
    refuses_all::<IpNetwork>(&[
        "10.0.0.256",
        "10.0.0",
        "10.0.0.1/33",
        "10.0.0.1/",
        "10.0.0.1/08",
        "10.0.0.1/-1",
        "10.0.0.1/255.0.0.0",
        "010.0.0.1",
        "::1/129",
        "fe80::1%eth0",
        "192.abc.123.0",
        "10.0.0.1/8/8",
        "10.0.0.1,10.0.0.2",
        "localhost",
        "[::1]",
        "1.2.3.4:80",
    ]);
}

#[test]
fn values_ip_allowlist() {
    let l: IpAllowlist = "192.168.1.10 10.0.0.0/8\t::1\n2001:db8::/32"
        .parse()
        .unwrap();
    assert_eq!(l.to_string(), "192.168.1.10 10.0.0.0/8 ::1 2001:db8::/32");
    assert_eq!(l.len(), 4);
    assert!(l.fits_inline());
    assert!(!l.is_empty());

    let (l, bad) = IpAllowlist::parse_lenient("1.2.3.4 nope 5.6.7.8/24 %[src]").unwrap();
    assert_eq!(l.to_string(), "1.2.3.4 5.6.7.8/24");
    assert_eq!(bad, vec!["nope", "%[src]"]);
    assert!("1.2.3.4 nope".parse::<IpAllowlist>().is_err());

    let many: Vec<String> = (0..62).map(|i| format!("10.0.0.{i}")).collect();
    let l: IpAllowlist = many.join(" ").parse().unwrap();
    assert!(!l.fits_inline());
    assert_eq!(l.entries().len(), 62);

    let big: Vec<String> = (0..15_000)
        .map(|i| format!("10.{}.{}.0/24", i / 256, i % 256))
        .collect();
    let l: IpAllowlist = big.join(" ").parse().unwrap();
    assert_eq!(l.len(), 15_000);

    let too_big = "1.1.1.1 ".repeat(IP_ALLOWLIST_MAX_BYTES / 8 + 1);
    assert!(IpAllowlist::parse_lenient(&too_big).is_err());

    refuses_all::<IpAllowlist>(&["1.2.3.4,5.6.7.8", "1.2.3.4;5.6.7.8", "nope"]);
    for s in ["", "   ", "x y z"] {
        assert!(IpAllowlist::parse_lenient(s).is_err(), "{s:?}");
    }
}

#[test]
fn values_hsts() {
    let cases = [
        ("max-age=31536000", "max-age=31536000"),
        ("max-age=0", "max-age=0"),
        (
            "max-age=31536000;includeSubDomains;preload",
            "max-age=31536000;includeSubDomains;preload",
        ),
        (
            "preload; max-age=1 ;INCLUDESUBDOMAINS",
            "max-age=1;includeSubDomains;preload",
        ),
        ("MAX-AGE = \"300\"", "max-age=300"),
        ("max-age\t=\t5\t;\tpreload", "max-age=5;preload"),
        (
            "includesubdomains;includeSubDomains;max-age=9",
            "max-age=9;includeSubDomains",
        ),
        ("max-age=0010", "max-age=10"),
    ];
    for (input, shown) in cases {
        let h: HstsPolicy = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(h.to_string(), shown, "{input}");
        rendered_is_safe(&h.to_string());
    }
    refuses_all::<HstsPolicy>(&[
        "includeSubDomains",
        "max-age",
        "max-age=",
        "max-age=-1",
        "max-age=1.5",
        "max-age=\"1",
        "max-age=1\"",
        "max-age=1;",
        ";max-age=1",
        "max-age=1;;preload",
        "max-age=1;max-age=2",
        "max-age=1;foo",
        "max-age=1;preload=1",
        "max-age=1,preload",
        " max-age=1",
        "max-age=1 ",
        "max-age=1\r\nX-Evil: 1",
        "max-age=1\n;preload",
        "max-age=1;preload'",
        "max-age=99999999999999999999",
        "max-age=1;preload #x",
    ]);
}

#[test]
fn values_rewrite_target() {
    for ok in [
        "/",
        "/api/v2/",
        "/a%20b",
        "/%2F%2f",
        "/a-b_c.d~e",
        "/x!&()*+,;=:@y",
        "//double",
        "/..",
    ] {
        let r: RewriteTarget = ok.parse().unwrap();
        assert_eq!(r.to_string(), ok);
        assert_eq!(r.as_str(), ok);
        rendered_is_safe(r.as_str());
    }
    let max = format!("/{}", "a".repeat(REWRITE_TARGET_MAX_LEN - 1));
    assert!(max.parse::<RewriteTarget>().is_ok());
    refuses_all::<RewriteTarget>(&[
        "api",
        "api/v2",
        "/a%",
        "/a%2",
        "/a%zz",
        "/a%%20",
        "/a%[src]",
        "/a%{+Q}[src]",
        "/a\\1",
        "/a#b",
        "/a'b",
        "/a$b",
        "/a?x=1",
        "/a{b}",
        "/a[0]",
        "/a<b>",
        "/a|b",
        "/a^b",
        "/a`b",
        "/a\tb",
        "/é",
        "/a\u{7f}",
        &format!("/{}", "a".repeat(REWRITE_TARGET_MAX_LEN)),
    ]);
}

#[test]
fn values_weight() {
    for n in [0, 1, 100, 255, 256] {
        let w = Weight::try_from(n).unwrap();
        assert_eq!(i64::from(w.get()), n);
        assert_eq!(w.to_string(), n.to_string());
    }
    for n in [-1, 257, 300, 65_536 + 100, i64::MAX, i64::MIN] {
        let e = Weight::try_from(n).unwrap_err();
        assert_eq!(e.kind(), ValueKind::Weight);
        assert_eq!(e.rule(), "must be between 0 and 256");
    }
    assert_eq!(Weight::new(256), Some(Weight::MAX));
    assert_eq!(Weight::new(257), None);
    assert_eq!(Weight::clamped(-5), Weight::ZERO);
    assert_eq!(Weight::clamped(257), Weight::MAX);
    assert_eq!(Weight::clamped(128).get(), 128);
    assert!(Weight::ZERO.is_zero() && !Weight::ONE.is_zero());
    assert_eq!(Weight::DEFAULT.get(), 100);
    assert!(Weight::ZERO < Weight::ONE && Weight::ONE < Weight::MAX);
}

#[test]
fn values_quote_for_message() {
    assert_eq!(quote_for_message("5x", 64), "\"5x\"");
    assert_eq!(quote_for_message("a\"b\\c", 64), "\"a\\\"b\\\\c\"");
    assert_eq!(quote_for_message("a\r\nb\t\0", 64), "\"a\\r\\nb\\t\\u{0}\"");
    assert_eq!(quote_for_message("é\u{202e}", 64), "\"\\u{e9}\\u{202e}\"");
    let long = "x".repeat(100);
    assert_eq!(
        quote_for_message(&long, 64),
        format!("\"{}...\"", "x".repeat(64))
    );
    assert_eq!(
        quote_for_message(&"x".repeat(64), 64),
        format!("\"{}\"", "x".repeat(64))
    );
    for s in HOSTILE {
        let q = quote_for_message(s, 64);
        assert!(q.bytes().all(|b| (b' '..=b'~').contains(&b)), "{q:?}");
    }
}
