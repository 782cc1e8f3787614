import { describe, expect, it } from "vitest";
import { sha256 } from "@noble/hashes/sha2.js";
import { CHANNEL_PROTOCOL, SecureChannel, type ChannelFrame, type ChannelHello } from "../../kernel-lib/src/crypto/channel.js";
import {
  aesGcmOpen,
  fromB64,
  fromHex,
  hex,
  hkdfSha256,
  utf8,
  x25519KeyPair,
  x25519Shared,
} from "../../kernel-lib/src/crypto/primitives.js";
import { seededRng } from "../../kernel-lib/src/rng.js";

const dec = (b: Uint8Array) => new TextDecoder().decode(b);

function pair(seed = "ch") {
  const rng = seededRng(seed);
  const { channel: a, hello } = SecureChannel.initiate({ party: "advertiser", rng: rng.fork("a") });
  const { channel: b, hello: reply } = SecureChannel.accept(hello, { party: "retailer", rng: rng.fork("b") });
  a.complete(reply);
  return { a, b, hello, reply };
}

const expectCode = (fn: () => unknown, code: string) => expect(fn).toThrow(new RegExp(`\\[${code}\\]`));

describe("SecureChannel", () => {
  it("delivers frames in both directions and both ends agree on the transcript hash", () => {
    const { a, b } = pair();
    expect(a.transcriptHash).toBe(b.transcriptHash);
    expect(dec(b.open(a.seal(utf8("psi request"), "psi.request")))).toBe("psi request");
    expect(dec(a.open(b.seal(utf8("psi response"), "psi.response")))).toBe("psi response");
    expect(dec(b.open(a.seal(utf8("second"), "psi.finish")))).toBe("second");
  });

  it("frames carry no plaintext and are plain JSON", () => {
    const { a } = pair();
    const f = a.seal(utf8("alice@example.com"), "upload");
    const json = JSON.stringify(f);
    expect(json).not.toContain("alice");
    expect(JSON.parse(json)).toEqual(f);
  });

  it("uses a separate key per direction: a reflected frame is refused", () => {
    const { a } = pair();
    const f = a.seal(utf8("x"), "p");
    expectCode(() => a.open(f), "CHANNEL_TAMPERED");
    // even with the direction label forged, the other direction's key does not open it
    expectCode(() => a.open({ ...f, direction: "r2i" }), "CHANNEL_TAMPERED");
  });

  it("refuses a modified ciphertext, purpose, sequence or session id in the AAD", () => {
    const { a, b } = pair();
    const f = a.seal(utf8("payload"), "psi.request");
    const ct = Buffer.from(f.ciphertext, "base64");
    ct[0] ^= 1;
    expectCode(() => b.open({ ...f, ciphertext: ct.toString("base64") }), "CHANNEL_TAMPERED");
    expectCode(() => b.open({ ...f, purpose: "marketing" }), "CHANNEL_TAMPERED");
    // the untouched frame still opens afterwards: failed frames do not advance the sequence
    expect(dec(b.open(f))).toBe("payload");
  });

  it("refuses a frame or raw-bytes header with fields beyond its own (e.g. a ciphertext beside raw bytes)", () => {
    const { a, b } = pair();
    const { header, ciphertext } = a.sealRaw(utf8("raw"), "psi.request");
    expectCode(() => b.openRaw({ ...header, ciphertext: "AAAA" } as never, ciphertext), "CHANNEL_TAMPERED");
    expectCode(() => b.openRaw({ ...header, note: 1 } as never, ciphertext), "CHANNEL_TAMPERED");
    expect(dec(b.openRaw(header, ciphertext))).toBe("raw"); // refused frames did not advance the sequence
    const f = a.seal(utf8("json"), "p");
    expectCode(() => b.open({ ...f, note: 1 } as never), "CHANNEL_TAMPERED");
    expect(dec(b.open(f))).toBe("json");
  });

  it("refuses a replayed frame", () => {
    const { a, b } = pair();
    const f = a.seal(utf8("once"), "p");
    b.open(f);
    expectCode(() => b.open(f), "CHANNEL_REPLAY");
  });

  it("refuses reordered frames and frames after a drop", () => {
    const { a, b } = pair();
    const f0 = a.seal(utf8("0"), "p");
    const f1 = a.seal(utf8("1"), "p");
    expectCode(() => b.open(f1), "CHANNEL_REORDER");
    expect(dec(b.open(f0))).toBe("0");
    expect(dec(b.open(f1))).toBe("1");
  });

  it("refuses a frame pasted from another session", () => {
    const s1 = pair("one");
    const s2 = pair("two");
    const f = s1.a.seal(utf8("x"), "p");
    expectCode(() => s2.b.open(f), "CHANNEL_WRONG_SESSION");
    // relabelled with the victim session's id, the AEAD still refuses it
    const pasted: ChannelFrame = { ...f, sessionId: s2.b.sessionId };
    expectCode(() => s2.b.open(pasted), "CHANNEL_TAMPERED");
  });

  it("refuses a reply hello from another session", () => {
    const rng = seededRng("hs");
    const { channel: a } = SecureChannel.initiate({ party: "a", rng: rng.fork("a") });
    const { hello: other } = SecureChannel.initiate({ party: "x", rng: rng.fork("x") });
    const { hello: reply } = SecureChannel.accept(other, { party: "b", rng: rng.fork("b") });
    expectCode(() => a.complete(reply), "CHANNEL_WRONG_SESSION");
  });

  it("with static identities, a man in the middle without the peer's static key is refused", () => {
    const rng = seededRng("static");
    const sa = x25519KeyPair(rng.fork("sa"));
    const sb = x25519KeyPair(rng.fork("sb"));
    const mallory = x25519KeyPair(rng.fork("m"));
    const { channel: a, hello } = SecureChannel.initiate({
      party: "a",
      rng: rng.fork("a"),
      staticKey: sa,
      peerStaticPublicKey: sb.publicKey,
    });
    // honest responder works
    const { channel: b, hello: reply } = SecureChannel.accept(hello, {
      party: "b",
      rng: rng.fork("b"),
      staticKey: sb,
      peerStaticPublicKey: sa.publicKey,
    });
    a.complete(reply);
    expect(dec(b.open(a.seal(utf8("hi"), "p")))).toBe("hi");
    // Mallory answers with her own static key: refused at the handshake
    const { channel: a2, hello: h2 } = SecureChannel.initiate({
      party: "a",
      rng: rng.fork("a2"),
      staticKey: sa,
      peerStaticPublicKey: sb.publicKey,
    });
    const { hello: fake } = SecureChannel.accept(h2, {
      party: "b",
      rng: rng.fork("m2"),
      staticKey: mallory,
      peerStaticPublicKey: sa.publicKey,
    });
    expectCode(() => a2.complete(fake), "CRYPTO_INVALID_KEY");
    // Mallory claims Bob's public static key but cannot compute the static term: keys differ
    const { channel: a3, hello: h3 } = SecureChannel.initiate({
      party: "a",
      rng: rng.fork("a3"),
      staticKey: sa,
      peerStaticPublicKey: sb.publicKey,
    });
    const { channel: m3, hello: f3 } = SecureChannel.accept(h3, {
      party: "b",
      rng: rng.fork("m3"),
      staticKey: { secretKey: mallory.secretKey, publicKey: sb.publicKey },
      peerStaticPublicKey: sa.publicKey,
    });
    a3.complete(f3);
    expectCode(() => m3.open(a3.seal(utf8("secret"), "p")), "CHANNEL_TAMPERED");
  });

  it("key-compromise impersonation: a thief of Alice's static key cannot pose as Bob to Alice (es/se terms)", () => {
    const rng = seededRng("kci");
    const sa = x25519KeyPair(rng.fork("sa"));
    const sb = x25519KeyPair(rng.fork("sb"));
    const { channel: alice, hello } = SecureChannel.initiate({
      party: "a",
      rng: rng.fork("a"),
      staticKey: sa,
      peerStaticPublicKey: sb.publicKey,
    });
    // Mallory stole sa.secretKey; she answers as "b" with Bob's PUBLIC static key and her own ephemeral
    const em = x25519KeyPair(rng.fork("m"));
    const reply: ChannelHello = {
      kind: "channel.hello",
      protocol: CHANNEL_PROTOCOL,
      role: "responder",
      party: "b",
      sessionId: hello.sessionId,
      ephemeralPublicKey: hex(em.publicKey),
      staticPublicKey: hex(sb.publicKey),
    };
    alice.complete(reply);
    const frame = alice.seal(utf8("for bob only"), "p");
    const canon = (h: ChannelHello) => JSON.stringify([h.protocol, h.role, h.party, h.sessionId, h.ephemeralPublicKey, h.staticPublicKey]);
    const th = sha256(utf8(canon(hello) + "\n" + canon(reply)));
    const tryOpen = (ikm: Uint8Array) => {
      const key = hkdfSha256(ikm, th, utf8(`${CHANNEL_PROTOCOL}/key/initiator→responder`), 32);
      const nonce = new Uint8Array(12);
      new DataView(nonce.buffer).setUint32(0, 0x69327200);
      return dec(
        aesGcmOpen(key, nonce, fromB64(frame.ciphertext), utf8(JSON.stringify([CHANNEL_PROTOCOL, frame.sessionId, "i2r", 0, "p"]))),
      );
    };
    const ea = fromHex(hello.ephemeralPublicKey);
    const ee = x25519Shared(em.secretKey, ea);
    const ss = x25519Shared(sa.secretKey, sb.publicKey); // computable with the stolen key
    const se = x25519Shared(sa.secretKey, em.publicKey); // also computable with the stolen key
    // every combination Mallory can compute fails ...
    expect(() => tryOpen(new Uint8Array([...ee, ...ss]))).toThrow(/CRYPTO_DECRYPT_FAILED/);
    // ... because es = DH(e_A, S_B) needs Bob's secret (positive control: with it, the replica derivation opens the frame)
    const es = x25519Shared(sb.secretKey, ea);
    expect(tryOpen(new Uint8Array([...ee, ...es, ...se, ...ss]))).toBe("for bob only");
  });

  it("validates its inputs with field names", () => {
    const rng = seededRng("v");
    expect(() => SecureChannel.initiate({ party: "", rng })).toThrow(/"party" expected/);
    const { channel: a } = SecureChannel.initiate({ party: "a", rng });
    expect(() => a.seal(utf8("x"), "p")).toThrow(/STATE_INVALID/);
    const { a: a2 } = pair();
    expect(() => a2.seal("text" as unknown as Uint8Array, "p")).toThrow(/"plaintext" expected Uint8Array/);
    expect(() => a2.seal(utf8("x"), "")).toThrow(/"purpose" expected/);
  });
});
