import type { PsiBackend } from "../../kernel-lib/src/identity/psi-backend.js";

/** A backend that counts scalar multiplications (hashAndBlind + blind), to show a refusal happens before any. */
export function counting(inner: PsiBackend): { be: PsiBackend; c: { mults: number } } {
  const c = { mults: 0 };
  const be: PsiBackend = {
    name: inner.name,
    threads: inner.threads,
    hashAndBlind: (e, k, p, ph) => ((c.mults += e.length), inner.hashAndBlind(e, k, p, ph)),
    blind: (x, k, p, ph) => ((c.mults += x.length), inner.blind(x, k, p, ph)),
    isValidPoint: (p) => inner.isValidPoint(p),
    close: () => inner.close(),
  };
  return { be, c };
}
