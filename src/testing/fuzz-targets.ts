/**
 * Every parser of outside input that the fuzzer (fuzz.ts) runs: the wire decoders (what
 * peers send), the length-prefixed framing under them, and the parsers of what users type
 * (CIDs, multiaddrs, peer ids, DHT record keys, byte sizes, the config file). A text parser
 * refuses with a ShoalError, whose code is the reason; any other error is a defect.
 */
import fc from 'fast-check'
import { CID } from 'multiformats/cid'
import { parseCid, CID_TEXT_LENGTH_MAX } from '../core/content/cid.ts'
import { isShoalError } from '../core/errors.ts'
import { GOSSIP_LIMITS } from '../core/gossip/messages.ts'
import { KAD_LIMITS } from '../core/kad/messages.ts'
import { SWARM_FRAME_BYTES_MAX } from '../core/swarm/messages.ts'
import type { DecodeResult } from '../core/sans-io.ts'
import { BAD_LENGTH_PREFIX, encodeFrame, FRAME_TOO_LARGE, FrameReader } from '../net/frames.ts'
import { MULTIADDR_TEXT_LENGTH_MAX, parseBootstrapAddress, parseMultiaddr, parsePeerId } from '../node/addresses.ts'
import { CONFIG_FILE_BYTES_MAX, defaultConfig, parseByteSize, parseConfigFile } from '../node/config.ts'
import { parseRecordKey } from '../node/dht.ts'
import { decodeGossip, encodeGossip, GOSSIP_WIRE_ERROR_CODES } from '../wire/gossip.ts'
import { decodeKad, encodeKad, KAD_WIRE_ERROR_CODES } from '../wire/kad.ts'
import { decodeMembership, encodeMembership, MEMBERSHIP_FRAME_BYTES_MAX, MEMBERSHIP_WIRE_ERROR_CODES } from '../wire/membership.ts'
import { decodeSwarm, encodeSwarm, SWARM_WIRE_ERROR_CODES } from '../wire/swarm.ts'
import type { FuzzTarget } from './fuzz.ts'
import { address, cidText, gossipRpc, kadMessage, membershipMessage, peerIds, swarmMessage } from './wire-arbitraries.ts'

const CORPUS_SIZE = 64
/** Fixed: the corpus is part of what a seed replays. */
const CORPUS_SEED = 20261206
const FRAME_BYTES_MAX = 4_096

const sample = <T>(arbitrary: fc.Arbitrary<T>): T[] => fc.sample(arbitrary, { seed: CORPUS_SEED, numRuns: CORPUS_SIZE })
const utf8 = new TextEncoder()
const text = new TextDecoder()

function wireTarget<T>(name: string, decode: (bytes: Uint8Array) => DecodeResult<T>, messages: Uint8Array[], sizeMax: number, codes: ReadonlySet<string>): FuzzTarget {
  return {
    name,
    corpus: messages,
    sizeMax,
    codes,
    parse: (input) => {
      const result = decode(input)
      return result.ok ? undefined : result.error.code
    },
  }
}

/** A parser of what users give: refusals are ShoalErrors, whose code is the reason. */
function shoalErrorTarget(name: string, parse: (input: Uint8Array) => unknown, corpus: Uint8Array[], sizeMax: number): FuzzTarget {
  return {
    name,
    corpus,
    sizeMax,
    codes: new Set(['INVALID_ARGUMENT', 'INVALID_CID', 'INVALID_CONFIG']),
    parse: (input) => {
      try {
        parse(input)
        return undefined
      } catch (error) {
        if (isShoalError(error)) return error.code
        throw error
      }
    },
  }
}

/** A parser of text: the input's bytes read as UTF-8 (invalid sequences become U+FFFD). */
function textTarget(name: string, parse: (text: string) => unknown, corpus: string[], sizeMax: number): FuzzTarget {
  return shoalErrorTarget(name, (input) => parse(text.decode(input)), corpus.map((entry) => utf8.encode(entry)), sizeMax)
}

/** Pushes the input in two chunks, reading frames until one is incomplete or refused. */
function framesTarget(): FuzzTarget {
  const frames = sample(fc.array(fc.uint8Array({ maxLength: 300 }), { minLength: 1, maxLength: 4 }))
  return {
    name: 'frames',
    corpus: frames.map((bodies) => {
      const encoded = bodies.map(encodeFrame)
      return Uint8Array.from(encoded.flatMap((frame) => [...frame]))
    }),
    sizeMax: FRAME_BYTES_MAX + 2,
    codes: new Set([FRAME_TOO_LARGE, BAD_LENGTH_PREFIX]),
    parse: (input) => {
      const reader = new FrameReader(FRAME_BYTES_MAX)
      const split = input.byteLength >>> 1
      for (const chunk of [input.subarray(0, split), input.subarray(split)]) {
        reader.push(chunk)
        for (let read = reader.read(); ; read = reader.read()) {
          if (!read.ok) return read.error.code
          if (read.frame === undefined) break
          if (read.frame.byteLength > FRAME_BYTES_MAX) throw new Error(`a frame of ${read.frame.byteLength} bytes passed a bound of ${FRAME_BYTES_MAX}`)
        }
      }
      if (reader.bufferedBytes > FRAME_BYTES_MAX + 3) throw new Error(`${reader.bufferedBytes} bytes held for one frame`)
      return undefined
    },
  }
}

export function fuzzTargets(): FuzzTarget[] {
  const cids = sample(fc.oneof(cidText(0), cidText(1)))
  const config = JSON.stringify(defaultConfig(), null, 2)
  return [
    wireTarget('kad', decodeKad, sample(kadMessage).map(encodeKad), KAD_LIMITS.frameBytesMax, KAD_WIRE_ERROR_CODES),
    wireTarget('gossip', decodeGossip, sample(gossipRpc).map(encodeGossip), GOSSIP_LIMITS.frameBytesMax, GOSSIP_WIRE_ERROR_CODES),
    wireTarget('swarm', decodeSwarm, sample(swarmMessage).map(encodeSwarm), SWARM_FRAME_BYTES_MAX, SWARM_WIRE_ERROR_CODES),
    wireTarget('membership', decodeMembership, sample(membershipMessage).map(encodeMembership), MEMBERSHIP_FRAME_BYTES_MAX, MEMBERSHIP_WIRE_ERROR_CODES),
    framesTarget(),
    textTarget('cid', parseCid, [...cids, ...cids.map((cid) => CID.parse(cid).toV1().toString())], CID_TEXT_LENGTH_MAX),
    textTarget('multiaddr', (entry) => parseMultiaddr(entry, 'address'), sample(address), MULTIADDR_TEXT_LENGTH_MAX),
    textTarget('bootstrap-address', parseBootstrapAddress, sample(address).map((entry, index) => `${entry}/p2p/${peerIds[index % peerIds.length]}`), MULTIADDR_TEXT_LENGTH_MAX),
    textTarget('peer-id', parsePeerId, [...peerIds], MULTIADDR_TEXT_LENGTH_MAX),
    textTarget('dht-record-key', parseRecordKey, peerIds.flatMap((peer) => [`/ipns/${peer}`, `/pk/${peer}`]), MULTIADDR_TEXT_LENGTH_MAX),
    textTarget('byte-size', (entry) => parseByteSize(entry, 'size'), ['1', '1024', '10MB', '1.5 GiB', '256KiB', '3 TB'], 64),
    shoalErrorTarget('config', (bytes) => parseConfigFile(bytes, 'config.json'), [config, JSON.stringify({ network: { listen: ['/ip4/0.0.0.0/tcp/4001'] } }), '{}'].map((entry) => utf8.encode(entry)), CONFIG_FILE_BYTES_MAX),
  ]
}
