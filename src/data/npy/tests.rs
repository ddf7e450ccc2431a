use proptest::prelude::*;

use super::header::MAGIC;
use super::*;

fn npy(version: u8, dict: &str, body: &[u8]) -> Vec<u8> {
    let len_field = if version == 1 { 2 } else { 4 };
    let mut header = dict.to_string();
    while !(8 + len_field + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    let mut out = MAGIC.to_vec();
    out.extend([version, 0]);
    if version == 1 {
        out.extend((header.len() as u16).to_le_bytes());
    } else {
        out.extend((header.len() as u32).to_le_bytes());
    }
    out.extend(header.as_bytes());
    out.extend(body);
    out
}

fn dict(descr: &str, shape: &str) -> String {
    format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}")
}

fn path() -> &'static Path {
    Path::new("x.npy")
}

#[test]
fn reads_uint8_in_every_version() {
    let body: Vec<u8> = (0..2 * 3 * 4).collect();
    for version in [1, 2, 3] {
        let bytes = npy(version, &dict("|u1", "(2, 3, 4)"), &body);
        let header = parse_header(path(), &bytes).expect("header");
        assert_eq!(header.version, (version, 0));
        assert_eq!(header.shape, [2, 3, 4]);
        assert_eq!(header.data_offset % 64, 0);
        let volume = parse_volume(path(), &bytes).expect("volume");
        assert_eq!(volume.note, None);
        assert_eq!(volume.data[[1, 2, 3]], 23);
        assert_eq!(volume.slice(1).map(|s| s[[0, 0]]), Some(12));
        assert!(volume.slice(2).is_none());
    }
}

#[test]
fn dict_variants_numpy_and_others_write() {
    for text in [
        "{'descr': '|u1', 'fortran_order': False, 'shape': (1, 1, 1), }",
        "{\"descr\":\"<u1\",\"fortran_order\":False,\"shape\":(1,1,1)}",
        "{'shape': (1L, 1L, 1L), 'fortran_order': False, 'descr': 'u1'}",
        "  {'descr': '>u1', 'fortran_order': False, 'shape': ( 1 , 1 , 1 , ) }\n",
    ] {
        let bytes = npy(1, text, &[7]);
        assert!(parse_volume(path(), &bytes).is_ok(), "{text}");
    }
}

#[test]
fn structured_dtype_is_unsupported_not_malformed() {
    let bytes = npy(
        1,
        "{'descr': [('a', '<i4'), ('b', '<f8')], 'fortran_order': False, 'shape': (1, 1, 1), }",
        &[0; 12],
    );
    let err = parse_header(path(), &bytes).expect_err("structured");
    assert!(matches!(err, NpyError::UnsupportedDtype { .. }), "{err}");
    assert!(
        err.to_string().contains("[('a', '<i4'), ('b', '<f8')]"),
        "{err}"
    );
}

#[test]
fn dict_errors_say_where() {
    for (text, wanted) in [
        (
            "{'descr': '|u1', 'fortran_order': False, 'shape': (1, 1, 1)",
            "expected ',' or '}'",
        ),
        (
            "{'descr': '|u1', 'fortran_order': False}",
            "missing key 'shape'",
        ),
        (
            "{'descr': '|u1', 'descr': '|u1'}",
            "key 'descr' appears twice",
        ),
        (
            "{'descr': '|u1', 'fortran_order': Maybe, 'shape': (1,)}",
            "found 'Maybe'",
        ),
        ("['descr']", "expected '{' at the start"),
        ("{'a': 1}", "unexpected key 'a'"),
        (
            "{'shape': (((((((((((((((((((((1,),),),),),),),),),),),),),),),),),),),),)}",
            "nested",
        ),
        ("{'shape': (99999999999999999999999,)}", "too large"),
        (
            "{'descr': '|u1', 'fortran_order': 0, 'shape': (1, 1, 1)}",
            "'fortran_order' is 0",
        ),
        (
            "{'descr': '|u1', 'fortran_order': False, 'shape': 3}",
            "'shape' is 3",
        ),
        (
            "{'descr': '|u1', 'fortran_order': False, 'shape': (1, 'a', 1)}",
            "'shape' holds 'a'",
        ),
        (
            "{'descr': '|u1', 'fortran_order': False, 'shape': (1, 1, 1)} x",
            "after the dict",
        ),
    ] {
        let bytes = npy(1, text, &[0]);
        let err = parse_header(path(), &bytes).expect_err(text);
        let msg = err.to_string();
        assert!(msg.contains(wanted), "{text}: {msg}");
        assert!(msg.starts_with("x.npy: "), "{msg}");
    }
}

#[test]
fn big_endian_and_wide_integers_scale() {
    let values: [u16; 4] = [100, 200, 300, 500];
    let body: Vec<u8> = values.iter().flat_map(|v| v.to_be_bytes()).collect();
    let v = parse_volume(path(), &npy(1, &dict(">u2", "(1, 2, 2)"), &body)).expect("u2");
    assert_eq!(
        v.data.iter().copied().collect::<Vec<_>>(),
        [0, 64, 128, 255]
    );
    assert_eq!(
        v.note.as_deref(),
        Some("scaled from uint16 (big-endian) range [100, 500] to 0–255")
    );
    let body: Vec<u8> = [-5i32, 5].iter().flat_map(|v| v.to_le_bytes()).collect();
    let v = parse_volume(path(), &npy(1, &dict("<i4", "(2, 1, 1)"), &body)).expect("i4");
    assert_eq!(v.data.iter().copied().collect::<Vec<_>>(), [0, 255]);
    let body: Vec<u8> = [7u32, 7].iter().flat_map(|v| v.to_le_bytes()).collect();
    let v = parse_volume(path(), &npy(1, &dict("<u4", "(2, 1, 1)"), &body)).expect("u4");
    assert_eq!(v.data.iter().copied().collect::<Vec<_>>(), [0, 0]);
    assert!(v
        .note
        .as_deref()
        .is_some_and(|n| n.contains("constant uint32")));
    let body: Vec<u8> = [f64::MIN, 0.0, f64::MAX]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let v = parse_volume(path(), &npy(1, &dict("<f8", "(3, 1, 1)"), &body)).expect("wide");
    assert_eq!(v.data.iter().copied().collect::<Vec<_>>(), [0, 128, 255]);
    assert_eq!(
        v.note.as_deref(),
        Some(
            "scaled from float64 range [-1.7976931348623157e308, 1.7976931348623157e308] to 0–255"
        )
    );
    let body: Vec<u8> = [0.0f64, f64::INFINITY]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect();
    let err = parse_volume(path(), &npy(1, &dict(">f8", "(1, 1, 2)"), &body)).expect_err("inf");
    assert!(
        err.to_string()
            .contains("value at [0, 0, 1] is NaN or infinite"),
        "{err}"
    );
}

#[test]
fn a_reader_that_grows_past_the_header_length_is_caught() {
    // The length check uses the length given; the body read catches more data behind it.
    let bytes = npy(1, &dict("|u1", "(1, 1, 2)"), &[1, 2, 3]);
    let mut reader = &bytes[..];
    let header = read_header_from(path(), &mut reader, bytes.len() as u64 - 1).expect("h");
    let err = read_body(path(), &header, &mut reader).expect_err("grew");
    assert!(
        err.to_string().contains("1 unexpected byte after the data"),
        "{err}"
    );
    let mut reader = &bytes[..bytes.len() - 2];
    let header = read_header_from(path(), &mut reader, bytes.len() as u64 - 1).expect("h");
    let err = read_body(path(), &header, &mut reader).expect_err("shrank");
    assert!(err.to_string().contains("the file has 1"), "{err}");
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = parse_volume(path(), &bytes);
    }

    #[test]
    fn arbitrary_headers_after_a_valid_prefix_never_panic(
        version in 1u8..=3,
        text in proptest::collection::vec(any::<u8>(), 0..200),
        body in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut bytes = MAGIC.to_vec();
        bytes.extend([version, 0]);
        if version == 1 {
            bytes.extend((text.len() as u16).to_le_bytes());
        } else {
            bytes.extend((text.len() as u32).to_le_bytes());
        }
        bytes.extend(&text);
        bytes.extend(&body);
        let _ = parse_volume(path(), &bytes);
    }

    #[test]
    fn dict_like_text_never_panics(
        parts in proptest::collection::vec(
            prop_oneof![
                Just("{"), Just("}"), Just("("), Just(")"), Just("["), Just("]"),
                Just(","), Just(":"), Just(" "), Just("'descr'"), Just("'shape'"),
                Just("'fortran_order'"), Just("'|u1'"), Just("'<f4'"), Just("'>i2'"),
                Just("True"), Just("False"), Just("None"), Just("0"), Just("1"), Just("3"),
                Just("18446744073709551616"), Just("'"), Just("\""), Just("\n"), Just("L"),
            ],
            0..40,
        ),
        body in proptest::collection::vec(any::<u8>(), 0..40),
    ) {
        let _ = parse_volume(path(), &npy(1, &parts.concat(), &body));
    }

    #[test]
    fn valid_small_volumes_round_trip(
        s in 1usize..4, h in 1usize..5, w in 1usize..5, seed in any::<u8>(),
    ) {
        let body: Vec<u8> = (0..s * h * w).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect();
        let bytes = npy(2, &dict("|u1", &format!("({s}, {h}, {w})")), &body);
        let v = parse_volume(path(), &bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(v.data.shape(), &[s, h, w]);
        prop_assert_eq!(v.data.iter().copied().collect::<Vec<_>>(), body);
    }
}
