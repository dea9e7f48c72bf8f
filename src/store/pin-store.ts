/**
 * Pins: the roots that garbage collection keeps. A recursive pin keeps a whole DAG, a
 * direct pin one block. Keyed by the CIDv1 text so that a CIDv0 and its CIDv1 are one pin.
 */
import type { AbstractSublevel } from 'abstract-level'
import { CID } from 'multiformats/cid'
import { ShoalError } from '../core/errors.ts'

export type PinType = 'recursive' | 'direct'

export interface Pin {
  cid: CID
  type: PinType
}

interface PinRecord {
  cid: string
  type: PinType
  createdMs: number
}

// The sublevel's parent type is irrelevant here; only its own keys and values are used.
type PinLevel = AbstractSublevel<any, string | Uint8Array, string, PinRecord>

// classic-level fsyncs a write with `sync`; sublevels pass it through but do not declare it.
const DURABLE = { sync: true } as {}

export class PinStore {
  readonly #level: PinLevel

  constructor(level: PinLevel) {
    this.#level = level
  }

  async add(cid: CID, type: PinType, nowMs: number): Promise<void> {
    await this.#level.put(pinKey(cid), { cid: cid.toString(), type, createdMs: nowMs }, DURABLE)
  }

  /** Throws PIN_NOT_FOUND when the CID is not pinned. */
  async remove(cid: CID): Promise<Pin> {
    const pin = await this.get(cid)
    if (pin === undefined) throw new ShoalError('PIN_NOT_FOUND', `${cid} is not pinned`)
    await this.#level.del(pinKey(cid), DURABLE)
    return pin
  }

  async get(cid: CID): Promise<Pin | undefined> {
    const record = await this.#level.get(pinKey(cid))
    return record === undefined ? undefined : toPin(record)
  }

  async *list(): AsyncIterable<Pin> {
    for await (const record of this.#level.values()) yield toPin(record)
  }
}

function pinKey(cid: CID): string {
  return cid.toV1().toString()
}

function toPin(record: PinRecord): Pin {
  return { cid: CID.parse(record.cid), type: record.type }
}
