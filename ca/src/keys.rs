//! Private key PEM in the formats plug-in CAs come with: PKCS#8 (`PRIVATE KEY`), PKCS#1
//! (`RSA PRIVATE KEY`, e.g. `openssl genrsa` before OpenSSL 3) and SEC1 (`EC PRIVATE KEY`, e.g.
//! `openssl ecparam -genkey`). ring reads only PKCS#8, so the others are wrapped.

use x509_parser::der_parser::{ber::BerObjectContent, der::parse_der};
use zeroize::Zeroizing;

const RSA_ENCRYPTION: &[u8] = &[0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes: Vec<u8> = n.to_be_bytes().into_iter().skip_while(|b| *b == 0).collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

fn pkcs8(alg_id_content: &[u8], private_key: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut body = Zeroizing::new(vec![0x02, 0x01, 0x00]);
    body.extend(tlv(0x30, alg_id_content));
    body.extend(Zeroizing::new(tlv(0x04, private_key)).iter());
    Zeroizing::new(tlv(0x30, &body))
}

/// The PKCS#8 DER of the first private key in `pem`.
pub fn pkcs8_der(pem: &str) -> Result<Zeroizing<Vec<u8>>, String> {
    for block in x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes()) {
        let block = block.map_err(|e| format!("bad PEM: {e}"))?;
        let der = Zeroizing::new(block.contents);
        match block.label.as_str() {
            "PRIVATE KEY" => return Ok(der),
            "RSA PRIVATE KEY" => {
                let mut alg = RSA_ENCRYPTION.to_vec();
                alg.extend([0x05, 0x00]);
                return Ok(pkcs8(&alg, &der));
            }
            "EC PRIVATE KEY" => return sec1_to_pkcs8(&der),
            _ => continue,
        }
    }
    Err("no PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block".into())
}

/// SEC1 `ECPrivateKey {version, privateKey, [0] parameters, [1] publicKey}` to PKCS#8: the curve
/// moves to the AlgorithmIdentifier and `[0]` is dropped (ring rejects it inside PKCS#8).
fn sec1_to_pkcs8(der: &[u8]) -> Result<Zeroizing<Vec<u8>>, String> {
    let bad = || "EC PRIVATE KEY is not a SEC1 ECPrivateKey".to_string();
    let (_, obj) = parse_der(der).map_err(|_| bad())?;
    let BerObjectContent::Sequence(items) = &obj.content else { return Err(bad()) };
    let mut curve = None;
    let mut public = None;
    let mut private = None;
    for item in items {
        match (&item.content, item.header.raw_tag()) {
            (BerObjectContent::OctetString(k), _) => private = Some(*k),
            _ if item.header.class() == x509_parser::der_parser::ber::Class::ContextSpecific => {
                let tag = item.header.tag().0;
                let inner = item.as_slice().map_err(|_| bad())?;
                if tag == 0 {
                    curve = Some(inner.to_vec());
                } else if tag == 1 {
                    public = Some(inner.to_vec());
                }
            }
            _ => {}
        }
    }
    let (curve, private) = (curve.ok_or("EC PRIVATE KEY names no curve")?, private.ok_or_else(bad)?);
    let mut ec = Zeroizing::new(vec![0x02, 0x01, 0x01]);
    ec.extend(Zeroizing::new(tlv(0x04, private)).iter());
    if let Some(p) = public {
        ec.extend(tlv(0xa1, &p));
    }
    let ec = Zeroizing::new(tlv(0x30, &ec));
    let mut alg = EC_PUBLIC_KEY.to_vec();
    alg.extend(curve);
    Ok(pkcs8(&alg, &ec))
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    fn openssl(args: &[&str]) -> String {
        let out = Command::new("openssl").args(args).output().expect("openssl must be installed");
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("utf8")
    }

    #[test]
    fn traditional_formats_load_like_pkcs8() {
        let sec1 = openssl(&["ecparam", "-genkey", "-name", "prime256v1"]);
        assert!(sec1.contains("EC PARAMETERS") && sec1.contains("EC PRIVATE KEY"));
        let p384 = openssl(&["ecparam", "-genkey", "-name", "secp384r1", "-noout"]);
        let pkcs1 = openssl(&["genrsa", "-traditional", "2048"]);
        assert!(pkcs1.contains("RSA PRIVATE KEY"));
        let pk8 = openssl(&["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]);
        for (name, pem) in [("sec1 p256", sec1), ("sec1 p384", p384), ("pkcs1", pkcs1), ("pkcs8", pk8)] {
            let der = pkcs8_der(&pem).expect(name);
            let kp = rcgen::KeyPair::try_from(der.as_slice()).unwrap_or_else(|e| panic!("{name}: {e}"));
            // The same public key openssl derives.
            let spki = openssl_pubkey(&pem);
            assert_eq!(kp.public_key_pem().trim(), spki.trim(), "{name}");
        }
        assert!(pkcs8_der("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").is_err());
    }

    fn openssl_pubkey(pem: &str) -> String {
        use std::io::Write;
        let mut child = Command::new("openssl")
            .args(["pkey", "-pubout"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("openssl");
        child.stdin.take().expect("stdin").write_all(pem.as_bytes()).expect("write");
        String::from_utf8(child.wait_with_output().expect("out").stdout).expect("utf8")
    }
}
