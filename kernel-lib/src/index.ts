/**
 * TEMPORARY notebook surface written by the foundation engineer so that notebooks can import
 * `@cleanroom-lab/kernel` before the real surface lands. The lead owns this file and replaces it.
 */
export * from "./rng.js";
export * from "./errors.js";
