"""The token signer: `run.py --mint-worker` runs main() in a process of its
own, under a Python that has `cryptography` (the peers' virtualenv), with a
JSON job list on stdin; it writes the token files the jobs name.

Standard library only but for `cryptography`, imported inside main(); like
every module of the harness it needs nothing else, which is what lets that
other Python run it. It imports nothing of the harness.
"""
import base64
import hashlib
import json
import sys
import time
from pathlib import Path


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def compact(obj):
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


def main():
    """`python run.py --mint-worker` under a Python with `cryptography` (the
    peers' venv): reads a JSON job list on stdin, writes one token per line per
    job. RS256 as an Auth0 tenant signs: header {alg, typ, kid}, claims {iss,
    sub, aud, iat, exp, jti}. The only code here outside the standard library,
    imported only in this mode. With a "dpop" member, DPoP-bound tokens and
    their proofs instead (see dpop())."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    spec = json.load(sys.stdin)
    key = serialization.load_pem_private_key(Path(spec["key"]).read_bytes(), password=None)
    header = compact({"alg": "RS256", "typ": "JWT", "kid": spec["kid"]})
    pad, sha = padding.PKCS1v15(), hashes.SHA256()

    def token(sub, jti, **more):
        claims = {"iss": spec["iss"], "sub": sub, "aud": spec["aud"], "iat": spec["iat"], "exp": spec["exp"],
                  "jti": jti, **more}
        signing_input = header + "." + compact(claims)
        return signing_input + "." + b64url(key.sign(signing_input.encode("ascii"), pad, sha))

    if "dpop" in spec:
        dpop(spec["dpop"], token)
        return
    for job in spec["jobs"]:
        with open(job["out"], "w") as f:
            for i in range(job["start"], job["start"] + job["count"]):
                sub = f"{job['sub_prefix']}{i}"
                if spec.get("random_subs"):
                    # As Auth0 makes them (a connection, then 24 hex digits), the same for
                    # the same prefix and i, so that the known-users pass finds the rows.
                    sub = "auth0|" + hashlib.sha256(sub.encode()).hexdigest()[:24]
                f.write(token(sub, f"{job['jti_prefix']}{i}") + "\n")


def dpop(spec, token):
    """DPoP (RFC 9449): spec["keys"] new EC P-256 keys, a token bound to each
    (`cnf.jkt`, the key's RFC 7638 thumbprint; sub spec["sub_prefix"]<k>),
    then for each job `count` lines `TOKEN PROOF`, the keys in turn: an ES256
    proof of spec["htm"] spec["htu"], `ath` the token's hash, `iat` the
    second it is made, `jti` job["jti_prefix"]<i>, each proof new."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    keys = []
    for k in range(spec["keys"]):
        private = ec.generate_private_key(ec.SECP256R1())
        public = private.public_key().public_numbers()
        # RFC 7638: the required members, in lexicographic order, no spaces.
        jwk = {"crv": "P-256", "kty": "EC", "x": b64url(public.x.to_bytes(32, "big")),
               "y": b64url(public.y.to_bytes(32, "big"))}
        jkt = b64url(hashlib.sha256(json.dumps(jwk, separators=(",", ":")).encode()).digest())
        bound = token(f"{spec['sub_prefix']}{k}", f"{spec['sub_prefix']}{k}", cnf={"jkt": jkt})
        keys.append((private, bound, b64url(hashlib.sha256(bound.encode()).digest()),
                     compact({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk})))
    es256 = ec.ECDSA(hashes.SHA256())
    for job in spec["jobs"]:
        with open(job["out"], "w") as f:
            for i in range(job["count"]):
                private, bound, ath, header = keys[i % len(keys)]
                signing_input = header + "." + compact({"jti": f"{job['jti_prefix']}{i}", "htm": spec["htm"],
                                                        "htu": spec["htu"], "iat": int(time.time()), "ath": ath})
                r, s = decode_dss_signature(private.sign(signing_input.encode("ascii"), es256))
                signature = b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
                f.write(f"{bound} {signing_input}.{signature}\n")
