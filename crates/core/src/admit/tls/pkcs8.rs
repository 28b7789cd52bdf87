//! A fast path for the common PKCS#8 private keys (RSA, and EC on a named
//! curve).
//!
//! OpenSSL 3.0's generic PKCS#8 reader (`PKey::private_key_from_pkcs8`,
//! `EVP_PKCS82PKEY`) sets up its whole provider decoder chain on every
//! call: about 0.6 ms per key, half of a Route certificate check. Inside,
//! the key types it handles here end in the same type-specific readers,
//! which are cheap when called directly: `d2i_RSAPrivateKey` for
//! `rsaEncryption`, and `d2i_ECPrivateKey` on the inner SEC1 key with the
//! curve taken from the algorithm parameters for `id-ecPublicKey`. This
//! module unwraps the PKCS#8 envelope with a strict DER reader and calls
//! those. Anything it does not fully understand (other algorithms,
//! version 2, attributes, explicit curve parameters, indefinite or
//! non-minimal lengths, trailing bytes) returns `None`, and the caller uses
//! OpenSSL's generic reader, so what is accepted and how it is reported
//! does not change; tests compare the two readers' keys.

use openssl::ec::EcKey;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;

/// `rsaEncryption` (1.2.840.113549.1.1.1).
const RSA_ENCRYPTION: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01];
/// `id-ecPublicKey` (1.2.840.10045.2.1).
const EC_PUBLIC_KEY: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const OCTET_STRING: u8 = 0x04;
const NULL: u8 = 0x05;
const OID: u8 = 0x06;
/// `[0]` constructed, context-specific (SEC1 `parameters`).
const CONTEXT_0: u8 = 0xA0;

/// One DER element: tag, contents, and the whole encoding.
struct Tlv<'a> {
    tag: u8,
    contents: &'a [u8],
    whole: &'a [u8],
}

/// Read one element from the front of `input` (single-byte tags, definite
/// minimal lengths); returns it and the rest.
fn read(input: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
    let (&tag, rest) = input.split_first()?;
    if tag & 0x1F == 0x1F {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7F);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (bytes, rest) = rest.split_at(count);
        if bytes[0] == 0 {
            return None;
        }
        let len = bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        if len < 0x80 {
            return None;
        }
        (len, rest)
    };
    if rest.len() < len {
        return None;
    }
    let header = input.len() - rest.len();
    let (contents, rest) = rest.split_at(len);
    Some((
        Tlv {
            tag,
            contents,
            whole: &input[..header + len],
        },
        rest,
    ))
}

/// All elements of `input`, which must be consumed exactly.
fn read_all(mut input: &[u8]) -> Option<Vec<Tlv<'_>>> {
    let mut out = Vec::new();
    while !input.is_empty() {
        let (tlv, rest) = read(input)?;
        out.push(tlv);
        input = rest;
    }
    Some(out)
}

/// DER header of an element of `len` content bytes.
fn header(tag: u8, len: usize) -> Vec<u8> {
    let mut out = vec![tag];
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|&b| b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out
}

/// The key in a PKCS#8 `PrivateKeyInfo` (DER), when it is an RSA key or
/// an EC key on a named curve in the plain version-0 form; `None` means
/// "use OpenSSL's generic reader".
pub(crate) fn parse(der: &[u8]) -> Option<PKey<Private>> {
    let (outer, trailing) = read(der)?;
    if outer.tag != SEQUENCE || !trailing.is_empty() {
        return None;
    }
    let fields = read_all(outer.contents)?;
    let [version, algorithm, private_key] = fields.as_slice() else {
        return None;
    };
    if version.tag != INTEGER || version.contents != [0] || private_key.tag != OCTET_STRING {
        return None;
    }
    if algorithm.tag != SEQUENCE {
        return None;
    }
    let algorithm = read_all(algorithm.contents)?;
    let [oid, params] = algorithm.as_slice() else {
        return None;
    };
    if oid.tag != OID {
        return None;
    }
    if oid.contents == RSA_ENCRYPTION {
        if params.tag != NULL || !params.contents.is_empty() {
            return None;
        }
        let rsa = Rsa::private_key_from_der(private_key.contents).ok()?;
        return PKey::from_rsa(rsa).ok();
    }
    if oid.contents == EC_PUBLIC_KEY {
        if params.tag != OID {
            return None;
        }
        return PKey::from_ec_key(ec_key(private_key.contents, params.whole)?).ok();
    }
    None
}

/// The SEC1 `ECPrivateKey` in `sec1`, with the curve `curve_oid` (a whole
/// OID element) as its parameters when it has none; if it names its own
/// curve, it must be the same one.
fn ec_key(sec1: &[u8], curve_oid: &[u8]) -> Option<EcKey<Private>> {
    let (inner, trailing) = read(sec1)?;
    if inner.tag != SEQUENCE || !trailing.is_empty() {
        return None;
    }
    let fields = read_all(inner.contents)?;
    if fields.len() < 2
        || fields[0].tag != INTEGER
        || fields[0].contents != [1]
        || fields[1].tag != OCTET_STRING
    {
        return None;
    }
    let der = match fields.get(2) {
        Some(params) if params.tag == CONTEXT_0 => {
            if params.contents != curve_oid {
                return None;
            }
            sec1.to_vec()
        }
        _ => {
            // version, privateKey, [0] curve, then whatever followed.
            let explicit = [header(CONTEXT_0, curve_oid.len()), curve_oid.to_vec()].concat();
            let mut body = Vec::with_capacity(inner.contents.len() + explicit.len());
            body.extend_from_slice(fields[0].whole);
            body.extend_from_slice(fields[1].whole);
            body.extend_from_slice(&explicit);
            for field in &fields[2..] {
                body.extend_from_slice(field.whole);
            }
            [header(SEQUENCE, body.len()), body].concat()
        }
    };
    EcKey::private_key_from_der(&der).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::ec::{EcGroup, PointConversionForm};
    use openssl::nid::Nid;
    use openssl::pkey::Id;

    fn same_key(a: &PKey<Private>, b: &PKey<Private>) {
        assert_eq!(a.id(), b.id());
        assert_eq!(a.bits(), b.bits());
        assert_eq!(a.security_bits(), b.security_bits());
        assert!(a.public_eq(b));
        assert_eq!(
            a.private_key_to_pem_pkcs8().unwrap(),
            b.private_key_to_pem_pkcs8().unwrap(),
            "normalized output differs"
        );
    }

    #[test]
    fn fast_path_gives_the_generic_readers_key() {
        let mut keys: Vec<PKey<Private>> = Vec::new();
        for nid in [Nid::X9_62_PRIME256V1, Nid::SECP384R1, Nid::SECP521R1] {
            let group = EcGroup::from_curve_name(nid).unwrap();
            keys.push(PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap());
        }
        keys.push(PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap());
        for key in &keys {
            let der = key.private_key_to_pkcs8().unwrap();
            let fast = parse(&der).expect("fast path applies");
            let generic = PKey::private_key_from_pkcs8(&der).unwrap();
            same_key(&fast, &generic);
            // Any trailing byte, or a truncation, leaves it to OpenSSL.
            let mut longer = der.clone();
            longer.push(0);
            assert!(parse(&longer).is_none());
            for cut in [1, der.len() / 2, der.len() - 1] {
                assert!(parse(&der[..cut]).is_none());
            }
        }
    }

    #[test]
    fn compressed_points_and_own_parameters() {
        // SEC1 with parameters and a compressed public key, wrapped in
        // PKCS#8 by OpenSSL, read both ways.
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        let mut ec = EcKey::generate(&group).unwrap();
        let mut group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        group.set_asn1_flag(openssl::ec::Asn1Flag::NAMED_CURVE);
        let point = ec
            .public_key()
            .to_bytes(
                &group,
                PointConversionForm::COMPRESSED,
                &mut openssl::bn::BigNumContext::new().unwrap(),
            )
            .unwrap();
        assert_eq!(point.len(), 33);
        ec = EcKey::from_private_components(
            &group,
            ec.private_key(),
            &openssl::ec::EcPoint::from_bytes(
                &group,
                &point,
                &mut openssl::bn::BigNumContext::new().unwrap(),
            )
            .unwrap(),
        )
        .unwrap();
        let key = PKey::from_ec_key(ec).unwrap();
        let der = key.private_key_to_pkcs8().unwrap();
        if let Some(fast) = parse(&der) {
            same_key(&fast, &PKey::private_key_from_pkcs8(&der).unwrap());
        }
    }

    #[test]
    fn other_keys_are_left_to_openssl() {
        let ed = PKey::generate_ed25519().unwrap();
        assert_eq!(ed.id(), Id::ED25519);
        assert!(parse(&ed.private_key_to_pkcs8().unwrap()).is_none());
        assert!(parse(b"").is_none());
        assert!(parse(&[0x30, 0x80, 0x00, 0x00]).is_none());
        assert!(
            parse(&[0x30, 0x81, 0x05, 1, 2, 3, 4, 5]).is_none(),
            "non-minimal length"
        );
    }
}
