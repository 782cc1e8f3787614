/**
 * PSI's two parties as objects that hold their own set, key and end of a Transport, and talk
 * only through it: `PsiInitiator` (party A, the PSI client) and `PsiResponder` (party B, the
 * server). runPsi links two of them in one process; psiParty runs one per process. Each
 * message crosses as its JSON fields (the envelope body) plus its packed points (the binary
 * attachment, psi-wire.ts).
 *
 * Threat model: see psi.ts and transport/. A party that fails closes its link, so its peer's
 * pending receive is refused instead of hanging; with `confirm` the run ends with a `psi.done`
 * so neither side of a two-process run keeps a result its peer refused.
 */
import { CleanRoomError } from "../errors.js";
import type { Rng } from "../rng.js";
import type { Tap, Transport } from "../transport/transport.js";
import { secureTransport } from "../transport/secure.js";
import { PsiClient, PsiServer, type PsiClientOutput, type PsiServerOutput } from "./psi.js";
import {
  fromEnvelope,
  toEnvelope,
  PSI_PROTOCOL,
  type PsiFinish,
  type PsiMessage,
  type PsiMode,
  type PsiPoints,
  type PsiRequest,
  type PsiResponse,
  type PsiSetup,
} from "./psi-wire.js";

/** Close the link when a party fails, so its peer's pending receive is refused instead of hanging. */
export async function closingOnError<T>(t: Transport, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (e) {
    t.close();
    throw e;
  }
}

/** Protocol of the end-of-session confirmation between party processes (psiParty). */
export const PSI_DONE_PROTOCOL = "cleanroom-lab/psi-done/v1";

/**
 * `confirm`: the party that receives the protocol's last message answers with a `psi.done`
 * naming the session, and the other party waits for it before returning, so neither side
 * of a two-process run keeps a result its peer refused (a failure before that point leaves
 * both sides with a typed refusal). Used by psiParty; runPsi's in-process pair needs none.
 */
async function sendDone(t: Transport, sessionId: string): Promise<void> {
  await t.send(PSI_DONE_PROTOCOL, "psi.done", { sessionId });
}
async function awaitDone(t: Transport, sessionId: string): Promise<void> {
  const done = await t.receive({ protocol: PSI_DONE_PROTOCOL, kind: "psi.done" });
  const body = done.body as { sessionId?: unknown } | null;
  if (body === null || typeof body !== "object" || body.sessionId !== sessionId)
    throw new CleanRoomError("PSI_INVALID_MESSAGE", `"psi.done.sessionId" expected this session's id, got another value`, {
      field: "psi.done.sessionId",
    });
}

/** Send a PSI message: its JSON fields as the body, packed points as the attachment (psi-wire.ts). */
function sendMessage(t: Transport, m: PsiMessage<PsiPoints>): Promise<void> {
  const { body, bytes } = toEnvelope(m);
  return t.send(PSI_PROTOCOL, m.kind, body, bytes);
}

/**
 * Party A (the PSI client) as its own object: its set, its key (inside `PsiClient`) and its
 * end of the link. It holds nothing of B but what arrives through the transport.
 */
export class PsiInitiator {
  constructor(
    private readonly client: PsiClient,
    private readonly set: string[],
    private readonly link: Transport,
    private readonly secure: { rng: Rng; tap?: Tap } | null,
    private readonly confirm = false,
  ) {}

  run(): Promise<{ out: PsiClientOutput; sessionId: string; channelTranscriptHash: string | null }> {
    return closingOnError(this.link, async () => {
      const t = this.secure ? await secureTransport(this.link, "initiator", this.secure) : this.link;
      // Each message is dropped as soon as it has been sent or processed: at 1M elements a
      // message is ~100 MB of strings, and the in-process pair holds both parties' copies.
      const sessionId = await this.sendRequest(t);
      const inbox: { setup: PsiSetup<PsiPoints> | null; response: PsiResponse<PsiPoints> | null } = { setup: null, response: null };
      inbox.setup = fromEnvelope(await t.receive({ protocol: PSI_PROTOCOL })) as PsiSetup<PsiPoints>;
      inbox.response = fromEnvelope(await t.receive({ protocol: PSI_PROTOCOL })) as PsiResponse<PsiPoints>;
      const pending = this.client.processResponse(inbox.setup, inbox.response);
      inbox.setup = inbox.response = null; // the client drops each once decoded
      const out = await pending;
      if (out.mode === "joinKeys") await sendMessage(t, out.finish);
      if (this.confirm) await (out.mode === "joinKeys" ? awaitDone(t, sessionId) : sendDone(t, sessionId));
      return { out, sessionId, channelTranscriptHash: "transcriptHash" in t ? (t.transcriptHash as string) : null };
    });
  }

  private async sendRequest(t: Transport): Promise<string> {
    const request = await this.client.createRequest(this.set);
    await sendMessage(t, request);
    return request.sessionId;
  }
}

/** Party B (the PSI server) as its own object: its set, its key (inside `PsiServer`) and its end of the link. */
export class PsiResponder {
  constructor(
    private readonly server: PsiServer,
    private readonly mode: PsiMode,
    private readonly set: string[],
    private readonly link: Transport,
    private readonly secure: { rng: Rng; tap?: Tap } | null,
    private readonly confirm = false,
  ) {}

  run(): Promise<PsiServerOutput | null> {
    return closingOnError(this.link, async () => {
      // our own set does not depend on the request: hash and blind it (on the backend's
      // workers) while the channel opens and the client hashes its own — off the critical path
      this.server.precompute(this.set);
      const t = this.secure ? await secureTransport(this.link, "responder", this.secure) : this.link;
      const sessionId = await this.answerRequest(t);
      if (this.mode !== "joinKeys") {
        if (this.confirm) await awaitDone(t, sessionId);
        return null;
      }
      const out = await this.server.processFinish(fromEnvelope(await t.receive({ protocol: PSI_PROTOCOL })) as PsiFinish<PsiPoints>);
      if (this.confirm) await sendDone(t, sessionId);
      return out;
    });
  }

  /** Receive the request, send setup and response; nothing of either is kept. */
  private async answerRequest(t: Transport): Promise<string> {
    // Messages are held in boxes cleared once handed on: a local would keep the ~100 MB of
    // strings of a 1M-element message alive across every later await of this function.
    const inbox: { request: PsiRequest<PsiPoints> | null } = {
      request: fromEnvelope(await t.receive({ protocol: PSI_PROTOCOL })) as PsiRequest<PsiPoints>,
    };
    const pending = this.server.answerRequest(inbox.request!, this.set);
    inbox.request = null;
    const answer = await pending;
    const sessionId = answer.setup.sessionId;
    await sendMessage(t, answer.setup);
    // the setup goes before the response is built
    const { response } = answer as { response: () => PsiResponse<PsiPoints>; setup?: unknown };
    delete (answer as { setup?: unknown }).setup;
    await sendMessage(t, response());
    return sessionId;
  }
}
