use proptest::prelude::*;

use super::*;

/// `zt:src/rbac.rs` `string_match` cases (ISTIO-FACTS §6.2 item 29).
#[test]
fn ztunnel_string_match() {
    let cases: &[(&str, &str, bool)] = &[
        ("foo", "foo", true),      // exact match
        ("foo", "not", false),     // exact mismatch
        ("foo", "", false),        // exact empty mismatch
        ("foo*", "foobar", true),  // prefix match
        ("foo*", "notfoo", false), // prefix mismatch
        ("foo*", "", false),       // prefix empty mismatch
        ("*foo", "barfoo", true),  // suffix match
        ("*foo", "foonot", false), // suffix mismatch
        ("*foo", "", false),       // suffix empty mismatch
        ("*", "foo", true),        // presence match
        ("*", "", false),          // presence mismatch
    ];
    for (pattern, value, want) in cases {
        assert_eq!(StringMatch::parse(pattern).matches(value), *want, "{pattern} vs {value:?}");
    }
}

/// `TestStringMatcherWithPrefix` / `TestStringMatcherRegex_Match` (§6.2 item 21): `*` is
/// required-presence, a leading `*` wins over a trailing one, no infix wildcards.
#[test]
fn test_string_matcher_regex_match() {
    assert_eq!(StringMatch::parse("*"), StringMatch::Presence);
    assert_eq!(StringMatch::parse("-prefix-*"), StringMatch::Prefix("-prefix-".into()));
    assert_eq!(StringMatch::parse("*-suffix"), StringMatch::Suffix("-suffix".into()));
    assert_eq!(StringMatch::parse("-exact"), StringMatch::Exact("-exact".into()));
    assert_eq!(StringMatch::parse("*mid*"), StringMatch::Suffix("mid*".into()));
    assert!(!StringMatch::parse("a*b").matches("axxb"));
    assert!(StringMatch::parse("a*b").matches("a*b"));
}

/// `TestHostMatcher` (§6.2 item 21): hosts match ignoring case.
#[test]
fn test_host_matcher() {
    let cases: &[(&str, &str, bool)] = &[
        ("example.com", "EXAMPLE.com", true),
        ("*.example.com", "www.EXAMPLE.COM", true),
        ("example.*", "Example.org", true),
        ("example.com", "example.org", false),
        ("*", "anything", true),
        ("*.example.com", "example.com", false),
    ];
    for (p, v, want) in cases {
        assert_eq!(StringMatch::parse(p).matches_ignore_case(v), *want, "{p} vs {v}");
    }
}

/// `TestRequestPrincipal` (istio generator_test.go, §6.2 item 20): value ⇒ (iss, sub) matchers.
#[test]
fn test_request_principal() {
    use StringMatch::*;
    let e = |s: &str| Exact(s.into());
    let cases: Vec<(&str, (StringMatch, StringMatch))> = vec![
        ("*", (Presence, Presence)),
        ("foo*", (Prefix("foo".into()), Presence)),
        ("foo/*", (e("foo"), Presence)),
        ("foo/bar*", (e("foo"), Prefix("bar".into()))),
        ("*foo", (Presence, Suffix("foo".into()))),
        ("*/foo", (Presence, e("foo"))),
        ("*bar/foo", (Suffix("bar".into()), e("foo"))),
        ("foo/bar", (e("foo"), e("bar"))),
        ("https://issuer.example.com/path/sub", (e("https://issuer.example.com/path"), e("sub"))),
    ];
    for (v, want) in cases {
        assert_eq!(request_principal_parts(v), Some(want), "{v}");
    }
    assert_eq!(request_principal_parts("no-slash"), None);
}

/// `TestServiceAccount` / `TestServiceAccountRegex` (generator_test.go, §6.2 item 20), input
/// `my-ns/my-sa` against principals (here without `spiffe://`).
#[test]
fn test_service_account_regex() {
    let m = ServiceAccountMatch::new("my-ns/my-sa", "ignored");
    let weird = ["cluster.local", "k", "ns", "my-ns", "something", "bar", "sa", "my-sa", "baz"].join("/");
    let cases: &[(&str, &str, bool)] = &[
        ("standard", "cluster.local/ns/my-ns/sa/my-sa", true),
        ("suffix attributes", "cluster.local/ns/my-ns/sa/my-sa/k/v", true),
        ("prefix attributes", "cluster.local/k/v/ns/my-ns/sa/my-sa", true),
        ("middle attributes", "cluster.local/ns/my-ns/k/v/sa/my-sa", true),
        ("all attributes", "cluster.local/k1/v1/ns/my-ns/k2/v2/sa/my-sa/k3/v3", true),
        ("sa suffix string", "cluster.local/ns/my-ns/sa/my-sa-suffix", false),
        ("ns suffix string", "cluster.local/ns/my-ns-suffix/sa/my-sa", false),
        ("invalid spiffe", "ns/my-ns/sa/my-sa", false),
        ("missing sa", "cluster.local/ns/my-ns", false),
        ("missing ns", "cluster.local/sa/my-sa", false),
        ("weird keys", &weird, true),
    ];
    for (name, id, want) in cases {
        assert_eq!(m.matches(id), *want, "{name}: {id}");
    }
    // `<sa>` alone means the policy's namespace.
    assert!(ServiceAccountMatch::new("my-sa", "my-ns").matches("cluster.local/ns/my-ns/sa/my-sa"));
}

/// `TestNamespaceMatcherRegex_Match` (§6.2 item 20): `.*/ns/<ns>/.*`, `*` ⇒ `.*`.
#[test]
fn test_namespace_matcher_regex_match() {
    let cases: &[(&str, &str, bool)] = &[
        ("foo", "cluster.local/ns/foo/sa/bar", true),
        ("foo", "cluster.local/ns/foobar/sa/bar", false),
        ("foo", "cluster.local/ns/barfoo/sa/bar", false),
        ("foo*", "cluster.local/ns/foobar/sa/bar", true),
        ("*foo", "cluster.local/ns/barfoo/sa/bar", true),
        ("*", "cluster.local/ns/anything/sa/bar", true),
        ("foo", "cluster.local/ns/foo", false),
        ("foo", "foo", false),
    ];
    for (v, p, want) in cases {
        assert_eq!(NamespaceMatch::new(v).matches(p), *want, "{v} vs {p}");
    }
}

/// `TestExtractNameInBrackets` / `TestExtractNameInNestedBrackets` (util_test.go, §6.2 item 22).
#[test]
fn test_extract_name_in_brackets() {
    use crate::policy::{name_in_brackets, nested_brackets};
    assert_eq!(name_in_brackets("[good]"), Some("good"));
    assert_eq!(name_in_brackets("[[good]]"), Some("[good]"));
    assert_eq!(name_in_brackets("[]"), Some(""));
    assert_eq!(name_in_brackets("[bad"), None);
    assert_eq!(name_in_brackets("bad]"), None);
    assert_eq!(name_in_brackets("bad"), None);
    let v = |s: &[&str]| Some(s.iter().map(|x| x.to_string()).collect::<Vec<_>>());
    assert_eq!(nested_brackets("[good]"), v(&["good"]));
    assert_eq!(nested_brackets("[outer][inner]"), v(&["outer", "inner"]));
    assert_eq!(nested_brackets("[outer][middle][inner]"), v(&["outer", "middle", "inner"]));
    assert_eq!(nested_brackets("[test-issuer-1@istio.io/simple]"), v(&["test-issuer-1@istio.io/simple"]));
    assert_eq!(nested_brackets("[outer]inner]"), None);
    assert_eq!(nested_brackets("[outer][inner"), None);
    assert_eq!(nested_brackets("outer][inner]"), None);
    assert_eq!(nested_brackets("[]"), None);
}

#[test]
fn test_convert_to_port() {
    assert_eq!(parse_port("443"), Some(443));
    assert_eq!(parse_port("-80"), None);
    assert_eq!(parse_port("xyz"), None);
    assert_eq!(parse_port("91234"), None);
}

#[test]
fn ip_blocks() {
    let n = parse_ip_block("10.0.0.7/24").expect("cidr");
    assert!(n.contains(&"10.0.0.200".parse::<IpAddr>().expect("ip")));
    assert!(!n.contains(&"10.0.1.1".parse::<IpAddr>().expect("ip")));
    let h = parse_ip_block("2001:db8::1").expect("v6");
    assert!(h.contains(&"2001:db8::1".parse::<IpAddr>().expect("ip")));
    assert!(parse_ip_block("10.0.0.0/33").is_none());
    assert!(parse_ip_block("nope").is_none());
}

proptest! {
    #[test]
    fn exact_matches_only_itself(a in "[a-z/.]{0,12}", b in "[a-z/.]{0,12}") {
        prop_assume!(!a.starts_with('*') && !a.ends_with('*'));
        prop_assert_eq!(StringMatch::parse(&a).matches(&b), a == b);
    }

    #[test]
    fn prefix_and_suffix_agree_with_std(p in "[a-z]{1,6}", s in "[a-z]{0,12}") {
        prop_assert_eq!(StringMatch::parse(&format!("{p}*")).matches(&s), s.starts_with(&p));
        prop_assert_eq!(StringMatch::parse(&format!("*{p}")).matches(&s), s.ends_with(&p));
    }

    #[test]
    fn ignore_case_equals_lowercased_match(p in "[a-zA-Z.*]{1,8}", s in "[a-zA-Z.]{0,12}") {
        let m = StringMatch::parse(&p);
        let lower = StringMatch::parse(&p.to_ascii_lowercase());
        prop_assert_eq!(m.matches_ignore_case(&s), lower.matches(&s.to_ascii_lowercase()));
    }

    #[test]
    fn glob_without_star_is_equality(a in "[a-z/]{0,10}", b in "[a-z/]{0,10}") {
        prop_assert_eq!(Glob::new(&a).matches(&b), a == b);
    }

    #[test]
    fn glob_star_matches_any_infix(pre in "[a-z]{0,4}", mid in "[a-z/]{0,8}", suf in "[a-z]{0,4}") {
        let s = format!("{pre}{mid}{suf}");
        let g = Glob::new(&format!("{pre}*{suf}"));
        prop_assert!(g.matches(&s));
    }

    #[test]
    fn namespace_match_equals_segment_equality(ns in "[a-z]{1,6}", other in "[a-z]{1,6}", sa in "[a-z]{1,6}") {
        let p = format!("cluster.local/ns/{other}/sa/{sa}");
        prop_assert_eq!(NamespaceMatch::new(&ns).matches(&p), ns == other);
    }

    #[test]
    fn service_account_match_standard_form(ns in "[a-z]{1,6}", sa in "[a-z]{1,6}", ns2 in "[a-z]{1,6}", sa2 in "[a-z]{1,6}") {
        let m = ServiceAccountMatch::new(&format!("{ns}/{sa}"), "x");
        let p = format!("td/ns/{ns2}/sa/{sa2}");
        prop_assert_eq!(m.matches(&p), ns == ns2 && sa == sa2);
    }

    #[test]
    fn cidr_contains_agrees_with_mask(a in any::<u32>(), b in any::<u32>(), len in 0u8..=32) {
        let net = parse_ip_block(&format!("{}/{len}", std::net::Ipv4Addr::from(a))).expect("cidr");
        let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
        let ip = IpAddr::from(std::net::Ipv4Addr::from(b));
        prop_assert_eq!(net.contains(&ip), (a & mask) == (b & mask));
    }

    #[test]
    fn single_ip_block_is_host_route(a in any::<u32>(), b in any::<u32>()) {
        let net = parse_ip_block(&std::net::Ipv4Addr::from(a).to_string()).expect("ip");
        prop_assert_eq!(net.contains(&IpAddr::from(std::net::Ipv4Addr::from(b))), a == b);
    }

    #[test]
    fn port_parse_roundtrip(p in any::<u16>()) {
        prop_assert_eq!(parse_port(&p.to_string()), Some(p));
    }
}

#[test]
fn principal_namespaces_include_overlaps() {
    let v: Vec<&str> = principal_namespaces("td/ns/ns/foo/sa/x").collect();
    assert_eq!(v, ["ns", "foo"]);
    assert_eq!(principal_namespaces("td/ns/foo").count(), 0);
    assert_eq!(NamespaceMatch::new("foo").exact_namespace(), Some("foo"));
    assert_eq!(NamespaceMatch::new("foo*").exact_namespace(), None);
    assert_eq!(ServiceAccountMatch::new("a/b", "x").namespace(), Some("a"));
    assert_eq!(ServiceAccountMatch::new("b", "x").namespace(), Some("x"));
}
