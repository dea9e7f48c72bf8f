/**
 * A fuzzer for Shoal's parsers of outside input (fuzz-targets.ts lists them): seeded, so a
 * run repeats, and fast enough for a million inputs per target (`npm run fuzz`). Inputs come
 * in five kinds, in turn: random bytes, a valid input cut short, a valid input with bytes
 * appended, an oversized input (past the most the parser is meant to take whole), and a valid
 * input with a few bytes changed, inserted or removed. Each input must be accepted or refused
 * with one of the target's reason codes; anything thrown, or an unknown code, is a defect.
 */
import { concat } from 'uint8arrays/concat'
import { Prng } from '../core/prng.ts'

export interface FuzzTarget {
  name: string
  /** Valid inputs, which the mutating kinds start from. */
  corpus: readonly Uint8Array[]
  /** The most the parser is meant to take whole (a frame bound, a text length). */
  sizeMax: number
  /** Every reason code `parse` may refuse with. */
  codes: ReadonlySet<string>
  /** undefined: accepted; a string: refused, with that reason code. Throwing is a defect. */
  parse(input: Uint8Array): string | undefined
}

export const INPUT_KINDS = ['random', 'truncated', 'trailing', 'oversized', 'mutated'] as const
export type InputKind = typeof INPUT_KINDS[number]

export interface FuzzDefect {
  kind: InputKind
  /** Hex of the input's first 64 bytes, and its length. */
  input: string
  bytes: number
  error: string
}

export interface FuzzReport {
  target: string
  inputs: number
  accepted: number
  /** Refusals by reason code. */
  rejections: Record<string, number>
  defects: FuzzDefect[]
  seconds: number
}

export interface FuzzOptions {
  inputs: number
  seed: string
  /** Stop collecting defects past this many (the count goes on). */
  defectsKept?: number
  /** Called every `checkpointEvery` inputs (memory sampling, progress). */
  onCheckpoint?: (done: number) => void
  checkpointEvery?: number
}

const DEFECTS_KEPT = 20
const RANDOM_BYTES_MAX = 1_024

export function fuzz(target: FuzzTarget, options: FuzzOptions): FuzzReport {
  const prng = Prng.fromSeed(`${options.seed}/${target.name}`)
  const report: FuzzReport = { target: target.name, inputs: 0, accepted: 0, rejections: {}, defects: [], seconds: 0 }
  let defectCount = 0
  const scratch: Scratch = { bytes: undefined }
  const startedMs = performance.now()
  for (let index = 0; index < options.inputs; index++) {
    const kind = INPUT_KINDS[index % INPUT_KINDS.length]!
    const input = makeInput(kind, target, prng, scratch)
    let code: string | undefined
    let defect: string | undefined
    try {
      code = target.parse(input)
      if (code !== undefined && !target.codes.has(code)) defect = `refused with an unknown reason code: ${code}`
    } catch (error) {
      defect = `threw: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`
    }
    report.inputs++
    if (defect !== undefined) {
      defectCount++
      if (report.defects.length < (options.defectsKept ?? DEFECTS_KEPT)) {
        report.defects.push({ kind, input: Buffer.from(input.subarray(0, 64)).toString('hex'), bytes: input.byteLength, error: defect.slice(0, 300) })
      }
    } else if (code === undefined) {
      report.accepted++
    } else {
      report.rejections[code] = (report.rejections[code] ?? 0) + 1
    }
    if (options.onCheckpoint !== undefined && (index + 1) % (options.checkpointEvery ?? 100_000) === 0) options.onCheckpoint(index + 1)
  }
  report.seconds = (performance.now() - startedMs) / 1_000
  if (defectCount > report.defects.length) report.defects.push({ kind: 'random', input: '', bytes: 0, error: `and ${defectCount - report.defects.length} more` })
  return report
}

/** Per run, so that a seed replays the same inputs whatever ran before. */
interface Scratch {
  bytes: Uint8Array | undefined
}

function makeInput(kind: InputKind, target: FuzzTarget, prng: Prng, scratch: Scratch): Uint8Array {
  const valid = target.corpus[prng.int(target.corpus.length)]!
  switch (kind) {
    case 'random': return randomBytes(prng, prng.int(Math.min(target.sizeMax, RANDOM_BYTES_MAX) + 1))
    case 'truncated': return valid.slice(0, prng.int(valid.byteLength + 1))
    case 'trailing': return concat([valid, randomBytes(prng, 1 + prng.int(16))])
    case 'oversized': {
      // Just past the bound, or (one in 16) up to twice it; valid bytes first, as a peer's real
      // frame would start. Cut from one buffer: for megabyte bounds, a new one each time would
      // be most of the run.
      const length = target.sizeMax + 1 + (prng.int(16) === 0 ? prng.int(target.sizeMax + 1) : prng.int(16))
      if (scratch.bytes === undefined || scratch.bytes.byteLength < length) scratch.bytes = randomBytes(prng, 2 * target.sizeMax + 17)
      const bytes = scratch.bytes.subarray(0, length)
      bytes.set(valid.subarray(0, Math.min(valid.byteLength, length)))
      return bytes
    }
    case 'mutated': {
      let bytes: Uint8Array = valid.slice()
      for (let changes = 1 + prng.int(4); changes > 0; changes--) {
        const at = prng.int(bytes.byteLength + 1)
        const operation = prng.int(3)
        if (operation === 0 && at < bytes.byteLength) bytes[at] = prng.int(256)
        else if (operation === 1) bytes = concat([bytes.subarray(0, at), Uint8Array.of(prng.int(256)), bytes.subarray(at)])
        else if (at < bytes.byteLength) bytes = concat([bytes.subarray(0, at), bytes.subarray(at + 1)])
      }
      return bytes
    }
  }
}

function randomBytes(prng: Prng, length: number): Uint8Array {
  const bytes = new Uint8Array(length)
  for (let index = 0; index < length; index += 4) {
    const word = prng.nextUint32()
    for (let shift = 0; shift < 4 && index + shift < length; shift++) bytes[index + shift] = (word >>> (8 * shift)) & 0xff
  }
  return bytes
}
