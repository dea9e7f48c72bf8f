/**
 * Lookup: the peer-selection state of one iterative Kademlia lookup (paper §2.3; libp2p
 * kad-dht spec, "Peer routing"), with S/Kademlia's disjoint paths (Baumgart and Mies,
 * §4.4). Each of `pathCount` paths keeps its own candidates, sorted by distance to the
 * target, and at most `alpha` requests in flight; a peer belongs to the first path that
 * learns of it, so the paths share no peer and one adversary cannot steer all of them. A
 * path is finished when its `k` closest candidates that did not fail have all answered.
 *
 * The Kad core owns one per query: it asks next() whom to query, reports answers and
 * failures, and decides what an answer means (providers, a value, the peer sought).
 * Pure: no time, no I/O.
 */
import type { PeerId } from '../sans-io.ts'
import { compareDistance, type Key } from './key.ts'

export interface LookupPeer {
  peer: PeerId
  key: Key
  addresses: readonly string[]
}

export type CandidateState = 'waiting' | 'in-flight' | 'answered' | 'failed'

export interface Candidate extends LookupPeer {
  /** Requests on the way from us to it: 1 for a seed, its referrer's hop + 1 otherwise. */
  hop: number
  path: number
  state: CandidateState
}

export interface LookupConfig {
  alpha: number
  /** k: how many closest answered peers finish a path. */
  closestCount: number
  pathCount: number
  /** Candidates kept per path; the farthest waiting ones go first when it overflows. */
  candidatesPerPathMax: number
}

export class Lookup {
  readonly target: Key
  readonly #config: LookupConfig
  readonly #self: PeerId
  readonly #paths: Candidate[][]
  readonly #inFlight: number[]
  readonly #seen = new Map<PeerId, Candidate>()
  #answeredCount = 0
  #failedCount = 0

  constructor(config: LookupConfig, self: PeerId, target: Key, seeds: readonly LookupPeer[]) {
    if (config.pathCount < 1 || config.alpha < 1 || config.closestCount < 1) throw new RangeError('lookup needs alpha, k and paths ≥ 1')
    this.#config = config
    this.#self = self
    this.target = target
    this.#paths = Array.from({ length: config.pathCount }, () => [])
    this.#inFlight = new Array<number>(config.pathCount).fill(0)
    // Seeds are dealt round-robin, closest first, so every path starts near the target.
    const sorted = [...seeds].sort((a, b) => compareDistance(target, a.key, b.key))
    sorted.forEach((seed, index) => this.#add(seed, index % config.pathCount, 1))
  }

  get answeredCount(): number {
    return this.#answeredCount
  }

  get failedCount(): number {
    return this.#failedCount
  }

  get inFlightCount(): number {
    let count = 0
    for (const inFlight of this.#inFlight) count += inFlight
    return count
  }

  candidate(peer: PeerId): Candidate | undefined {
    return this.#seen.get(peer)
  }

  /** Candidates to query now, marked in flight: on each path, the closest waiting ones among its k best, up to alpha in flight. */
  next(): Candidate[] {
    const chosen: Candidate[] = []
    this.#paths.forEach((path, pathIndex) => {
      let considered = 0
      for (const candidate of path) {
        if (this.#inFlight[pathIndex]! >= this.#config.alpha || considered >= this.#config.closestCount) break
        if (candidate.state === 'failed') continue
        considered++
        if (candidate.state !== 'waiting') continue
        candidate.state = 'in-flight'
        this.#inFlight[pathIndex]!++
        chosen.push(candidate)
      }
    })
    return chosen
  }

  /** An answer from `peer`: the peers it named join its path. Returns the candidates added. */
  answered(peer: PeerId, closer: readonly LookupPeer[]): Candidate[] {
    const candidate = this.#seen.get(peer)
    if (candidate === undefined || candidate.state !== 'in-flight') return []
    candidate.state = 'answered'
    this.#inFlight[candidate.path]!--
    this.#answeredCount++
    const added: Candidate[] = []
    for (const learnt of closer) {
      const addedCandidate = this.#add(learnt, candidate.path, candidate.hop + 1)
      if (addedCandidate !== undefined) added.push(addedCandidate)
    }
    return added
  }

  failed(peer: PeerId): void {
    const candidate = this.#seen.get(peer)
    if (candidate === undefined || candidate.state !== 'in-flight') return
    candidate.state = 'failed'
    this.#inFlight[candidate.path]!--
    this.#failedCount++
  }

  /** Every path has its k closest live candidates answered (or has no one left to ask). */
  get finished(): boolean {
    return this.#paths.every((path) => this.#pathFinished(path))
  }

  /** The closest answered peers over all paths, closest first. */
  closestAnswered(count: number): Candidate[] {
    const answered: Candidate[] = []
    for (const path of this.#paths) for (const candidate of path) if (candidate.state === 'answered') answered.push(candidate)
    answered.sort((a, b) => compareDistance(this.target, a.key, b.key))
    return answered.slice(0, count)
  }

  /** Requests still in flight to peers past the k closest are not waited for. */
  #pathFinished(path: Candidate[]): boolean {
    let considered = 0
    for (const candidate of path) {
      if (considered >= this.#config.closestCount) return true
      if (candidate.state === 'failed') continue
      if (candidate.state !== 'answered') return false
      considered++
    }
    return true
  }

  #add(peer: LookupPeer, pathIndex: number, hop: number): Candidate | undefined {
    if (peer.peer === this.#self || this.#seen.has(peer.peer)) return undefined
    const path = this.#paths[pathIndex]!
    const candidate: Candidate = { ...peer, hop, path: pathIndex, state: 'waiting' }
    // Binary search for the insertion point: paths are kept sorted by distance.
    let low = 0
    let high = path.length
    while (low < high) {
      const middle = (low + high) >>> 1
      if (compareDistance(this.target, path[middle]!.key, peer.key) < 0) low = middle + 1
      else high = middle
    }
    if (low >= this.#config.candidatesPerPathMax) return undefined
    path.splice(low, 0, candidate)
    this.#seen.set(peer.peer, candidate)
    if (path.length > this.#config.candidatesPerPathMax) {
      // Drop the farthest waiting candidate; peers asked or answered stay for the result.
      for (let index = path.length - 1; index >= 0; index--) {
        if (path[index]!.state !== 'waiting') continue
        path.splice(index, 1)
        break
      }
    }
    return candidate
  }
}
