/**
 * CSV files for the canonical study: streaming writer and a small-file reader.
 *
 * What it does: `writeStudyParquet` writes the study joined (normalised e-mail as join key) to
 * Parquet for file uploads (issue 18). `writeStudyFiles` streams `exposures.csv` and `purchases.csv` in chunks of
 * lines (constant memory, 10k–10M rows), hashes each file with SHA-256 while writing, and
 * writes `ground_truth.json` beside them. Output bytes depend only on the parameters —
 * never on the chunk size — so the same seed gives byte-identical files. Fields never
 * contain commas, quotes or newlines, so lines are plain comma-joined values (RFC 4180
 * compatible without quoting); e-mails may carry leading/trailing spaces or a tab on purpose.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { CleanRoomError, invalid } from "../errors.js";
import { EXPOSURE_COLUMNS, PURCHASE_COLUMNS, streamStudy, type ExposureRow, type PurchaseRow } from "./study.js";
import { resolveStudyParams, type StudyParams } from "./params.js";
import type { GroundTruth } from "./truth.js";
import { normalizeStudyEmail } from "./emails.js";
import { duck, duckMemoryLimit } from "../cleanroom/duckdb.js";

export interface StudyFiles {
  dir: string;
  exposures: { path: string; rows: number; bytes: number; sha256: string };
  purchases: { path: string; rows: number; bytes: number; sha256: string };
  groundTruth: string;
}

export type GroundTruthWithFiles = GroundTruth & {
  files: {
    exposures: Omit<StudyFiles["exposures"], "path"> & { file: string };
    purchases: Omit<StudyFiles["purchases"], "path"> & { file: string };
  };
};

class CsvStream {
  private lines: string[] = [];
  private readonly fd: number;
  private readonly hash = sha256.create();
  private readonly enc = new TextEncoder();
  rows = 0;
  bytes = 0;
  constructor(
    readonly file: string,
    header: readonly string[],
    private readonly chunkLines: number,
  ) {
    this.fd = fs.openSync(file, "w");
    this.write(`${header.join(",")}\n`);
  }
  private write(text: string) {
    const b = this.enc.encode(text);
    this.hash.update(b);
    this.bytes += b.length;
    let off = 0;
    while (off < b.length) off += fs.writeSync(this.fd, b, off, b.length - off);
  }
  line(s: string) {
    this.lines.push(s);
    this.rows++;
    if (this.lines.length >= this.chunkLines) this.flush();
  }
  flush() {
    if (this.lines.length > 0) this.write(`${this.lines.join("\n")}\n`);
    this.lines = [];
  }
  close(): string {
    this.flush();
    fs.closeSync(this.fd);
    return bytesToHex(this.hash.digest());
  }
}

/**
 * Stream the study to `<outDir>/exposures.csv`, `<outDir>/purchases.csv` and
 * `<outDir>/ground_truth.json` (creating `outDir`). Returns the ground truth including
 * row counts and SHA-256 of both files.
 *
 * @example
 * const truth = writeStudyFiles({ seed: "s1", advertiserRows: 1_000_000, overlap: 0.6,
 *   holdoutShare: 0.2, baseConversionRate: 0.08, liftPct: 20 }, "out/study-1m");
 */
export function writeStudyFiles(params: StudyParams, outDir: string, opts: { chunkLines?: number } = {}): GroundTruthWithFiles {
  if (typeof outDir !== "string" || outDir.length === 0) invalid("outDir", "non-empty path string", outDir);
  const chunkLines = opts.chunkLines ?? 10_000;
  if (!Number.isSafeInteger(chunkLines) || chunkLines < 1) invalid("opts.chunkLines", "positive integer", chunkLines);
  resolveStudyParams(params); // refuse bad parameters before touching the file system
  fs.mkdirSync(outDir, { recursive: true });
  const exp = new CsvStream(path.join(outDir, "exposures.csv"), EXPOSURE_COLUMNS, chunkLines);
  const pur = new CsvStream(path.join(outDir, "purchases.csv"), PURCHASE_COLUMNS, chunkLines);
  let truth: GroundTruth;
  let expHash = "";
  let purHash = "";
  try {
    truth = streamStudy(params, {
      exposure: (r) =>
        exp.line(`${r.email},${r.group},${r.reached},${r.impressions},${r.first_exposure_day},${r.region},${r.age_band},${r.channel}`),
      purchase: (r) => pur.line(`${r.email},${r.purchase_day},${r.value_cents},${r.store_region},${r.category}`),
    });
  } finally {
    expHash = exp.close();
    purHash = pur.close();
  }
  const withFiles: GroundTruthWithFiles = {
    ...truth,
    files: {
      exposures: { file: "exposures.csv", rows: exp.rows, bytes: exp.bytes, sha256: expHash },
      purchases: { file: "purchases.csv", rows: pur.rows, bytes: pur.bytes, sha256: purHash },
    },
  };
  fs.writeFileSync(path.join(outDir, "ground_truth.json"), `${JSON.stringify(withFiles, null, 2)}\n`);
  return withFiles;
}

/** SHA-256 (hex) of a file, read in 1 MiB chunks. */
export function fileSha256(file: string): string {
  const h = sha256.create();
  const fd = fs.openSync(file, "r");
  const buf = new Uint8Array(1 << 20);
  try {
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return bytesToHex(h.digest());
}

function parseCsv(file: string, columns: readonly string[]): string[][] {
  const text = fs.readFileSync(file, "utf8");
  const lines = text.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  if (lines[0] !== columns.join(","))
    throw new CleanRoomError("DATASET_INVALID", `"${path.basename(file)}" expected header ${columns.join(",")}`, { field: "header" });
  return lines.slice(1).map((l, i) => {
    const f = l.split(",");
    if (f.length !== columns.length)
      throw new CleanRoomError(
        "DATASET_INVALID",
        `"${path.basename(file)}" row ${i + 1} expected ${columns.length} fields, got ${f.length}`,
        { field: `rows[${i}]` },
      );
    return f;
  });
}

/**
 * Read a generated study back (small files only: it holds everything in memory).
 *
 * @example
 * const { exposures, purchases, groundTruth } = readStudyFiles("datasets/sample");
 */
export function readStudyFiles(dir: string): { exposures: ExposureRow[]; purchases: PurchaseRow[]; groundTruth: GroundTruthWithFiles } {
  if (typeof dir !== "string" || dir.length === 0) invalid("dir", "non-empty path string", dir);
  const exposures = parseCsv(path.join(dir, "exposures.csv"), EXPOSURE_COLUMNS).map((f): ExposureRow => ({
    email: f[0]!,
    group: f[1] as ExposureRow["group"],
    reached: Number(f[2]) as 0 | 1,
    impressions: Number(f[3]),
    first_exposure_day: Number(f[4]),
    region: f[5] as ExposureRow["region"],
    age_band: f[6] as ExposureRow["age_band"],
    channel: f[7] as ExposureRow["channel"],
  }));
  const purchases = parseCsv(path.join(dir, "purchases.csv"), PURCHASE_COLUMNS).map((f): PurchaseRow => ({
    email: f[0]!,
    purchase_day: Number(f[1]),
    value_cents: Number(f[2]),
    store_region: f[3] as PurchaseRow["store_region"],
    category: f[4]!,
  }));
  const groundTruth = JSON.parse(fs.readFileSync(path.join(dir, "ground_truth.json"), "utf8")) as GroundTruthWithFiles;
  return { exposures, purchases, groundTruth };
}

/** What {@link writeStudyParquet} wrote. */
export interface StudyParquet {
  dir: string;
  exposures: { path: string; rows: number; bytes: number };
  purchases: { path: string; rows: number; bytes: number };
  groundTruth: GroundTruth;
}

/**
 * The study as two Parquet files for the lift template as uploaded after PSI: each e-mail
 * replaced by its normalised form as the join key (`normalizeStudyEmail`, what the PSI
 * matches on; PSI itself is not run), the other columns as generated. Streams: lines go to a
 * CSV work file in chunks, DuckDB copies it to Parquet (zstd) and the CSV is removed, so a
 * 100M-row study needs no more memory than a 1M-row one. Same seed → same rows.
 *
 * @example
 * const s = await writeStudyParquet({ seed: "s1", advertiserRows: 10_000_000, overlap: 0.6,
 *   holdoutShare: 0.2, baseConversionRate: 0.08, liftPct: 20 }, "out/study-10m");
 * await upload(lab, { party: "advertiser", name: "exposures", path: s.exposures.path, … })
 */
export async function writeStudyParquet(params: StudyParams, outDir: string, opts: { chunkLines?: number } = {}): Promise<StudyParquet> {
  if (typeof outDir !== "string" || outDir.length === 0) invalid("outDir", "non-empty path string", outDir);
  const chunkLines = opts.chunkLines ?? 10_000;
  resolveStudyParams(params);
  fs.mkdirSync(outDir, { recursive: true });
  const exCols = ["join_key", ...EXPOSURE_COLUMNS.slice(1)];
  const puCols = ["join_key", ...PURCHASE_COLUMNS.slice(1)];
  const exCsv = path.join(outDir, "exposures.joined.csv");
  const puCsv = path.join(outDir, "purchases.joined.csv");
  const exp = new CsvStream(exCsv, exCols, chunkLines);
  const pur = new CsvStream(puCsv, puCols, chunkLines);
  let truth: GroundTruth;
  try {
    truth = streamStudy(params, {
      exposure: (r) =>
        exp.line(
          `${normalizeStudyEmail(r.email)},${r.group},${r.reached},${r.impressions},${r.first_exposure_day},${r.region},${r.age_band},${r.channel}`,
        ),
      purchase: (r) => pur.line(`${normalizeStudyEmail(r.email)},${r.purchase_day},${r.value_cents},${r.store_region},${r.category}`),
    });
  } finally {
    exp.close();
    pur.close();
  }
  const spill = path.join(outDir, ".duckdb-spill");
  const instance = await duck().DuckDBInstance.create(":memory:", { temp_directory: spill, memory_limit: duckMemoryLimit() });
  const conn = await instance.connect();
  const out = { exposures: path.join(outDir, "exposures.parquet"), purchases: path.join(outDir, "purchases.parquet") };
  try {
    for (const [csv, pq] of [
      [exCsv, out.exposures],
      [puCsv, out.purchases],
    ] as const)
      await conn.run(
        `COPY (SELECT * FROM read_csv(?, header = true, all_varchar = true)) TO '${pq.replaceAll("'", "''")}' (FORMAT parquet, COMPRESSION zstd)`,
        [csv],
      );
  } finally {
    conn.closeSync();
    instance.closeSync();
    fs.rmSync(exCsv, { force: true });
    fs.rmSync(puCsv, { force: true });
    fs.rmSync(path.join(outDir, ".duckdb-spill"), { recursive: true, force: true });
  }
  return {
    dir: outDir,
    exposures: { path: out.exposures, rows: exp.rows, bytes: fs.statSync(out.exposures).size },
    purchases: { path: out.purchases, rows: pur.rows, bytes: fs.statSync(out.purchases).size },
    groundTruth: truth,
  };
}
