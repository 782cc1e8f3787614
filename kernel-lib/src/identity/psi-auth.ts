/**
 * PSI peer authentication bound to the SecureChannel (psiParty's `peerAuth`): each side proves
 * its key over the channel transcript hash and checks the peer's before any PSI message.
 *
 * Threat model: the transcript hash binds both ephemeral keys, so a proof cannot be replayed
 * into another session or relayed by a man in the middle; a peer whose proof does not verify
 * is refused (SIGNATURE_INVALID) before any blinded point is sent.
 */
import { CleanRoomError } from "../errors.js";
import type { Transport } from "../transport/transport.js";

/** The protocol of the peer-authentication message exchanged right after the channel handshake. */
export const PSI_AUTH_PROTOCOL = "cleanroom-lab/psi-auth/v1";

/**
 * Peer authentication bound to the SecureChannel: right after the handshake each side sends a
 * proof over the channel's transcript hash (which binds both ephemeral keys, so a proof cannot
 * be replayed into another session or relayed by a man in the middle) and checks the peer's
 * before any PSI message — no blinded point is sent to a peer whose proof does not verify.
 * The room binds it to the members' Ed25519 keys (verbs/psi.ts `psiWithPeer({ room })`).
 */
export interface PsiPeerAuth {
  /** This side's proof over the channel transcript hash (e.g. an Ed25519 signature, hex). */
  prove(transcriptHash: string): string;
  /** Does the peer's proof verify under the key this side expects for the peer? */
  verify(transcriptHash: string, proof: string): boolean;
}

/** Exchange proofs over the channel transcript; refuse (typed, before any PSI message) a peer whose proof does not verify. */
export async function authenticatePeer(s: Transport & { readonly transcriptHash: string }, auth: PsiPeerAuth): Promise<void> {
  await s.send(PSI_AUTH_PROTOCOL, "psi.auth", { proof: auth.prove(s.transcriptHash) });
  const env = await s.receive({ protocol: PSI_AUTH_PROTOCOL, kind: "psi.auth" });
  const proof = (env.body as { proof?: unknown } | null)?.proof;
  let ok = false;
  try {
    ok = typeof proof === "string" && proof.length <= 1024 && auth.verify(s.transcriptHash, proof);
  } catch {
    ok = false;
  }
  if (!ok)
    throw new CleanRoomError(
      "SIGNATURE_INVALID",
      `"peer" expected ${s.peer}'s proof of its member key over this session, got one that does not verify: PSI refused, no blinded point sent`,
      { field: "peer" },
    );
}
