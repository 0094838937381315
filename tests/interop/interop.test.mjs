// The interop suite: the official atproto TypeScript clients against a
// running PDS. Run by tests/tests/interop.rs (once on SQLite, once on
// PostgreSQL) as
//
//   PDS_URL=http://127.0.0.1:PORT PLC_URL=http://127.0.0.1:PORT \
//     node --test --test-concurrency=1 tests/interop/
//
// - @atproto/api drives accounts, sessions and records, and every XRPC
//   error is checked by name;
// - @atproto/repo verifies every getRepo / getCheckout CAR (commit
//   signature against the #atproto key of the DID document from the PLC
//   directory, the whole MST, the MST root rebuilt from the records equal
//   to the commit's data), `since` diffs, and every sync.getRecord proof;
// - @atproto/sync's Firehose verifies every #commit (authenticated: proofs
//   and signatures) of a burst across several accounts, a raw subscription
//   checks the sync 1.1 inversion of every #commit over only the blocks it
//   carries, and a reconnect with a cursor loses and duplicates nothing.

import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, test } from 'node:test'

import { AtpAgent, XRPCError } from '@atproto/api'
import { IdResolver } from '@atproto/identity'
import { parseCid } from '@atproto/lex-data'
import {
  MST,
  MemoryBlockstore,
  Repo,
  def,
  readCar,
  readCarWithRoot,
  verifyCommitSig,
  verifyDiffCar,
  verifyProofs,
  verifyRecords,
  verifyRepoCar,
} from '@atproto/repo'
import { Firehose } from '@atproto/sync'
import { Subscription } from '@atproto/xrpc-server'

const env = (name) => {
  const v = process.env[name]
  if (!v) throw new Error(`${name} is not set (see the header of this file)`)
  return v.replace(/\/$/, '')
}
const PDS_URL = env('PDS_URL')
const PLC_URL = env('PLC_URL')
// The default fetch of @atproto/identity refuses IP hosts and plain HTTP
// (SSRF protection); the test PLC directory is on http://127.0.0.1.
const idResolver = new IdResolver({ plcUrl: PLC_URL, fetch: globalThis.fetch })

const POST = 'app.bsky.feed.post'
const LIKE = 'app.bsky.feed.like'
const PROFILE = 'app.bsky.actor.profile'
const PASSWORD = 'correct horse battery'

const suffix = () => randomBytes(3).toString('hex')
const post = (text) => ({ $type: POST, text, createdAt: new Date().toISOString() })
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/** Asserts that `promise` rejects with an XRPC error `status` / `name`. */
async function rejectsWith(promise, status, name) {
  await assert.rejects(promise, (e) => {
    assert.ok(e instanceof XRPCError, `not an XRPC error: ${e?.stack ?? e}`)
    assert.equal(e.error, name, `error name (message: ${e.message})`)
    assert.equal(e.status, status, `status of ${name}`)
    return true
  })
}

async function newAccount(name) {
  const agent = new AtpAgent({ service: PDS_URL })
  const handle = `${name}-${suffix()}.test`
  await agent.createAccount({ handle, email: `${handle}@example.com`, password: PASSWORD })
  assert.ok(agent.session?.did?.startsWith('did:plc:'), 'a did:plc')
  return { agent, did: agent.session.did, handle }
}

const anon = () => new AtpAgent({ service: PDS_URL })

/** Every record of a repo: Map "collection/rkey" -> cid string. */
async function listAll(agent, did) {
  const out = new Map()
  const { data } = await agent.com.atproto.repo.describeRepo({ repo: did })
  for (const collection of data.collections) {
    let cursor
    do {
      const res = await agent.com.atproto.repo.listRecords({ repo: did, collection, limit: 100, cursor })
      for (const r of res.data.records) {
        const rkey = r.uri.split('/').pop()
        out.set(`${collection}/${rkey}`, r.cid)
      }
      cursor = res.data.records.length === 100 ? res.data.cursor : undefined
    } while (cursor)
  }
  return out
}

/**
 * Fetches getRepo and verifies it with @atproto/repo against the DID
 * document's key; checks it against getLatestCommit and listRecords and
 * that the MST rebuilt from the records has the commit's data as root.
 * Returns the CAR bytes.
 */
async function verifyFullRepo(agent, did, method = 'getRepo') {
  const key = await idResolver.did.resolveAtprotoKey(did, true)
  const latest = (await anon().com.atproto.sync.getLatestCommit({ did })).data
  const car = (await anon().com.atproto.sync[method]({ did })).data
  assert.ok(car instanceof Uint8Array, `${method} returns bytes`)
  const verified = await verifyRepoCar(car, did, key)
  assert.equal(verified.commit.cid.toString(), latest.cid, `${method} root is the latest commit`)
  assert.equal(verified.commit.rev, latest.rev)

  const inRepo = new Map(
    verified.creates.map((c) => [`${c.collection}/${c.rkey}`, c.cid.toString()]),
  )
  assert.deepEqual(
    [...inRepo.entries()].sort(),
    [...(await listAll(agent, did)).entries()].sort(),
    'the CAR holds exactly the listed records',
  )

  // The MST rebuilt from the records alone has the commit's data as root.
  const { root, blocks } = await readCarWithRoot(car)
  const storage = new MemoryBlockstore(blocks)
  const commit = await storage.readObj(root, def.commit)
  assert.ok(await verifyCommitSig(commit, key), 'commit signature')
  let rebuilt = await MST.create(new MemoryBlockstore())
  for (const c of verified.creates) {
    rebuilt = await rebuilt.add(`${c.collection}/${c.rkey}`, c.cid)
  }
  assert.equal((await rebuilt.getPointer()).toString(), commit.data.toString(), 'MST root')
  return car
}

/** Fetches sync.getRecord and verifies the proof with @atproto/repo. */
async function verifyRecordProof(did, collection, rkey, cid, key) {
  const proof = (await anon().com.atproto.sync.getRecord({ did, collection, rkey })).data
  const latest = (await anon().com.atproto.sync.getLatestCommit({ did })).data
  const { root } = await readCarWithRoot(proof)
  assert.equal(root.toString(), latest.cid, 'the proof is rooted at the latest commit')
  const records = await verifyRecords(proof, did, key)
  assert.equal(records.length, 1, 'one record in the proof')
  assert.equal(records[0].collection, collection)
  assert.equal(records[0].rkey, rkey)
  const claims = [{ collection, rkey, cid: parseCid(cid) }]
  const { verified, unverified } = await verifyProofs(proof, claims, did, key)
  assert.equal(verified.length, 1, `proof of ${collection}/${rkey}`)
  assert.equal(unverified.length, 0)
  return records[0].record
}

describe('@atproto/api: accounts and sessions', () => {
  test('describeServer', async () => {
    const { data } = await anon().com.atproto.server.describeServer()
    assert.ok(data.did.startsWith('did:'), data.did)
    assert.ok(Array.isArray(data.availableUserDomains) && data.availableUserDomains.length > 0)
  })

  test('createAccount, login, getSession, refresh, resume, logout', async () => {
    const { agent, did, handle } = await newAccount('alice')
    const me = (await agent.com.atproto.server.getSession()).data
    assert.equal(me.did, did)
    assert.equal(me.handle, handle)
    assert.equal(me.email, `${handle}@example.com`)

    // The DID document in the PLC directory points at this PDS.
    const doc = await idResolver.did.resolveAtprotoData(did, true)
    assert.equal(doc.handle, handle)
    assert.equal(doc.pds, process.env.PDS_PUBLIC_URL ?? PDS_URL, 'the #atproto_pds service')

    const login = anon()
    await login.login({ identifier: handle, password: PASSWORD })
    assert.equal(login.session.did, did)
    const byDid = anon()
    await byDid.login({ identifier: did, password: PASSWORD })
    await rejectsWith(anon().login({ identifier: handle, password: 'wrong password' }), 401, 'AuthenticationRequired')

    // Refresh rotates the refresh token; the new tokens work.
    const before = { ...login.session }
    await login.sessionManager.refreshSession()
    assert.notEqual(login.session.refreshJwt, before.refreshJwt, 'refresh token rotated')
    assert.equal((await login.com.atproto.server.getSession()).data.did, did)

    // A fresh agent resumes a saved session.
    const resumed = anon()
    await resumed.resumeSession({ ...login.session })
    assert.equal((await resumed.com.atproto.server.getSession()).data.handle, handle)

    // Logout revokes the refresh token.
    const saved = { ...login.session }
    await login.logout()
    assert.equal(login.session, undefined)
    const stale = anon()
    await rejectsWith(
      stale.com.atproto.server.refreshSession(undefined, {
        headers: { authorization: `Bearer ${saved.refreshJwt}` },
      }),
      400,
      'ExpiredToken',
    )
  })

  test('createAccount errors', async () => {
    const { handle } = await newAccount('taken')
    // The reference answers a taken handle with a plain InvalidRequest.
    await rejectsWith(
      anon().createAccount({ handle, email: `other-${suffix()}@example.com`, password: PASSWORD }),
      400,
      'InvalidRequest',
    )
    const attempt = (handle) =>
      anon().createAccount({ handle, email: `x-${suffix()}@example.com`, password: PASSWORD })
    // Not a handle at all: refused by the lexicon's format check.
    await rejectsWith(attempt(`bad_handle-${suffix()}.test`), 400, 'InvalidRequest')
    await rejectsWith(attempt('ab.test'), 400, 'InvalidHandle')
    await rejectsWith(attempt(`elsewhere-${suffix()}.example.org`), 400, 'UnsupportedDomain')
  })

  test('app passwords', async () => {
    const { agent, did, handle } = await newAccount('apppw')
    const created = (await agent.com.atproto.server.createAppPassword({ name: 'interop' })).data
    assert.equal(created.name, 'interop')
    assert.match(created.password, /^[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}$/)
    const listed = (await agent.com.atproto.server.listAppPasswords()).data.passwords
    assert.deepEqual(listed.map((p) => p.name), ['interop'])

    const app = anon()
    await app.login({ identifier: handle, password: created.password })
    assert.equal(app.session.did, did)
    await app.com.atproto.repo.createRecord({ repo: did, collection: POST, record: post('via app password') })

    await agent.com.atproto.server.revokeAppPassword({ name: 'interop' })
    assert.deepEqual((await agent.com.atproto.server.listAppPasswords()).data.passwords, [])
    await rejectsWith(anon().login({ identifier: handle, password: created.password }), 401, 'AuthenticationRequired')
  })

  test('identity: resolveHandle and updateHandle', async () => {
    const { agent, did, handle } = await newAccount('ident')
    assert.equal((await anon().com.atproto.identity.resolveHandle({ handle })).data.did, did)
    const renamed = `renamed-${suffix()}.test`
    await agent.com.atproto.identity.updateHandle({ handle: renamed })
    assert.equal((await anon().com.atproto.identity.resolveHandle({ handle: renamed })).data.did, did)
    assert.equal((await idResolver.did.resolveAtprotoData(did, true)).handle, renamed)
    // The reference answers an unknown handle with a plain InvalidRequest.
    await rejectsWith(anon().com.atproto.identity.resolveHandle({ handle }), 400, 'InvalidRequest')
  })
})

describe('@atproto/api: records', () => {
  test('create, get, list, put, delete, applyWrites, swaps', async () => {
    const { agent, did } = await newAccount('records')
    const repo = agent.com.atproto.repo

    const a = (await repo.createRecord({ repo: did, collection: POST, record: post('first') })).data
    assert.match(a.uri, new RegExp(`^at://${did}/${POST}/`))
    const rkeyA = a.uri.split('/').pop()
    const got = (await repo.getRecord({ repo: did, collection: POST, rkey: rkeyA })).data
    assert.equal(got.cid, a.cid)
    assert.equal(got.value.text, 'first')
    await rejectsWith(repo.getRecord({ repo: did, collection: POST, rkey: '3jzfcijpj2z2a' }), 400, 'RecordNotFound')

    // The convenience wrapper of @atproto/api.
    const b = await agent.post({ text: 'second' })
    const listed = (await repo.listRecords({ repo: did, collection: POST })).data.records
    assert.deepEqual(listed.map((r) => r.uri).sort(), [a.uri, b.uri].sort())

    // putRecord: create then update the profile.
    const p1 = (await repo.putRecord({ repo: did, collection: PROFILE, rkey: 'self', record: { $type: PROFILE, displayName: 'One' } })).data
    const p2 = (await repo.putRecord({ repo: did, collection: PROFILE, rkey: 'self', record: { $type: PROFILE, displayName: 'Two' }, swapRecord: p1.cid })).data
    assert.notEqual(p1.cid, p2.cid)
    await rejectsWith(
      repo.putRecord({ repo: did, collection: PROFILE, rkey: 'self', record: { $type: PROFILE, displayName: 'Three' }, swapRecord: p1.cid }),
      400,
      'InvalidSwap',
    )
    const head = (await anon().com.atproto.sync.getLatestCommit({ did })).data
    await rejectsWith(
      repo.createRecord({ repo: did, collection: POST, record: post('stale'), swapCommit: a.commit.cid }),
      400,
      'InvalidSwap',
    )

    // applyWrites: a create, an update and a delete in one commit.
    const rkeyB = b.uri.split('/').pop()
    const batch = (
      await repo.applyWrites({
        repo: did,
        swapCommit: head.cid,
        writes: [
          { $type: 'com.atproto.repo.applyWrites#create', collection: LIKE, rkey: '3kaaaaaaaaa22', value: { $type: LIKE, subject: { uri: a.uri, cid: a.cid }, createdAt: new Date().toISOString() } },
          { $type: 'com.atproto.repo.applyWrites#update', collection: POST, rkey: rkeyA, value: post('first, edited') },
          { $type: 'com.atproto.repo.applyWrites#delete', collection: POST, rkey: rkeyB },
        ],
      })
    ).data
    assert.equal(batch.results.length, 3)
    assert.equal(batch.results[0].$type, 'com.atproto.repo.applyWrites#createResult')
    assert.equal(batch.results[1].$type, 'com.atproto.repo.applyWrites#updateResult')
    assert.equal(batch.results[2].$type, 'com.atproto.repo.applyWrites#deleteResult')
    await rejectsWith(repo.getRecord({ repo: did, collection: POST, rkey: rkeyB }), 400, 'RecordNotFound')
    assert.equal((await repo.getRecord({ repo: did, collection: POST, rkey: rkeyA })).data.value.text, 'first, edited')

    await repo.deleteRecord({ repo: did, collection: POST, rkey: rkeyA })
    await rejectsWith(repo.getRecord({ repo: did, collection: POST, rkey: rkeyA }), 400, 'RecordNotFound')
    const described = (await repo.describeRepo({ repo: did })).data
    assert.equal(described.did, did)
    assert.ok(described.collections.includes(LIKE))

    // Another account cannot write here.
    const other = await newAccount('other')
    await rejectsWith(
      other.agent.com.atproto.repo.createRecord({ repo: did, collection: POST, record: post('intruder') }),
      401,
      'AuthenticationRequired',
    )
    await verifyFullRepo(agent, did)
  })

  test('blobs: uploadBlob, getBlob, listBlobs', async () => {
    const { agent, did } = await newAccount('blobs')
    const png = Buffer.from(
      'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==',
      'base64',
    )
    const { blob } = (await agent.com.atproto.repo.uploadBlob(png, { encoding: 'image/png' })).data
    assert.equal(blob.mimeType, 'image/png')
    assert.equal(blob.size, png.length)
    await agent.com.atproto.repo.putRecord({ repo: did, collection: PROFILE, rkey: 'self', record: { $type: PROFILE, avatar: blob } })
    const cid = blob.ref.toString()
    const got = await anon().com.atproto.sync.getBlob({ did, cid })
    assert.deepEqual(Buffer.from(got.data), png)
    const listed = (await anon().com.atproto.sync.listBlobs({ did })).data.cids
    assert.deepEqual(listed, [cid])
    // The lexicon names BlobNotFound; the reference PDS answers a plain
    // InvalidRequest "Blob not found". Either, with status 400.
    await assert.rejects(
      anon().com.atproto.sync.getBlob({ did, cid: 'bafkreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm' }),
      (e) => e instanceof XRPCError && e.status === 400 && ['BlobNotFound', 'InvalidRequest'].includes(e.error),
    )
  })
})

describe('@atproto/repo: sync reads verified', () => {
  let alice
  const records = new Map()
  before(async () => {
    alice = await newAccount('sync')
    for (let i = 0; i < 30; i++) {
      const r = (await alice.agent.com.atproto.repo.createRecord({ repo: alice.did, collection: POST, record: post(`post ${i}`) })).data
      records.set(r.uri.split('/').pop(), r.cid)
    }
  })

  test('getRepo and getCheckout: signature, MST, records', async () => {
    await verifyFullRepo(alice.agent, alice.did, 'getRepo')
    await verifyFullRepo(alice.agent, alice.did, 'getCheckout')
  })

  test('getRepo since a rev: a diff that verifies on top of the earlier repo', async () => {
    const { did, agent } = alice
    const key = await idResolver.did.resolveAtprotoKey(did)
    const full = await verifyFullRepo(agent, did)
    const { root, blocks } = await readCarWithRoot(full)
    const earlier = await Repo.load(new MemoryBlockstore(blocks), root)
    const since = earlier.commit.rev

    const [first, second] = [...records.keys()]
    const created = (await agent.com.atproto.repo.createRecord({ repo: did, collection: POST, record: post('after since') })).data
    const updated = (await agent.com.atproto.repo.putRecord({ repo: did, collection: POST, rkey: first, record: post('updated after since') })).data
    // The replaced version's block is gone: keep the current CID.
    records.set(first, updated.cid)
    await agent.com.atproto.repo.deleteRecord({ repo: did, collection: POST, rkey: second })
    records.delete(second)

    const diff = (await anon().com.atproto.sync.getRepo({ did, since })).data
    const verified = await verifyDiffCar(earlier, diff, did, key)
    const latest = (await anon().com.atproto.sync.getLatestCommit({ did })).data
    assert.equal(verified.commit.cid.toString(), latest.cid)
    const writes = verified.writes.map((w) => `${w.action}:${w.collection}/${w.rkey}`).sort()
    assert.deepEqual(writes, [
      `create:${POST}/${created.uri.split('/').pop()}`,
      `delete:${POST}/${second}`,
      `update:${POST}/${first}`,
    ].sort())
    records.set(created.uri.split('/').pop(), created.cid)
  })

  test('getRecord proofs for every record; RecordNotFound', async () => {
    const { did, agent } = alice
    const key = await idResolver.did.resolveAtprotoKey(did)
    const all = await listAll(agent, did)
    assert.ok(all.size >= 30)
    for (const [path, cid] of all) {
      const [collection, rkey] = path.split('/')
      await verifyRecordProof(did, collection, rkey, cid, key)
    }
    await rejectsWith(
      anon().com.atproto.sync.getRecord({ did, collection: POST, rkey: '3jzfcijpj2z2a' }),
      400,
      'RecordNotFound',
    )
  })

  test('getBlocks, getHead, getLatestCommit, getRepoStatus, listRepos', async () => {
    const { did } = alice
    const latest = (await anon().com.atproto.sync.getLatestCommit({ did })).data
    assert.equal((await anon().com.atproto.sync.getHead({ did })).data.root, latest.cid)
    const status = (await anon().com.atproto.sync.getRepoStatus({ did })).data
    assert.equal(status.active, true)
    assert.equal(status.rev, latest.rev)

    const [rkey, recordCid] = [...records.entries()][0]
    const res = await anon().com.atproto.sync.getBlocks({ did, cids: [latest.cid, recordCid] })
    const car = await readCar(res.data) // checks every block against its CID
    assert.equal(car.roots.length, 0)
    const cids = new Set(car.blocks.entries().map((e) => e.cid.toString()))
    assert.deepEqual([...cids].sort(), [latest.cid, recordCid].sort(), `blocks of ${rkey}`)
    await rejectsWith(
      anon().com.atproto.sync.getBlocks({ did, cids: [latest.cid, 'bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm'] }),
      400,
      'BlockNotFound',
    )

    const seen = new Map()
    let cursor
    do {
      const page = (await anon().com.atproto.sync.listRepos({ limit: 2, cursor })).data
      for (const r of page.repos) {
        assert.ok(!seen.has(r.did), `listRepos repeats ${r.did}`)
        seen.set(r.did, r)
      }
      cursor = page.cursor
    } while (cursor)
    assert.equal(seen.get(did)?.head, latest.cid)
    assert.equal(seen.get(did)?.rev, latest.rev)
    assert.equal(seen.get(did)?.active, true)
  })

  test('unknown repos: RepoNotFound', async () => {
    const did = 'did:plc:aaaaaaaaaaaaaaaaaaaaaaaa'
    const sync = anon().com.atproto.sync
    await rejectsWith(sync.getRepo({ did }), 400, 'RepoNotFound')
    await rejectsWith(sync.getLatestCommit({ did }), 400, 'RepoNotFound')
    await rejectsWith(sync.getRepoStatus({ did }), 400, 'RepoNotFound')
    await rejectsWith(sync.getRecord({ did, collection: POST, rkey: '3jzfcijpj2z2a' }), 400, 'RepoNotFound')
    await rejectsWith(sync.getBlocks({ did, cids: ['bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm'] }), 400, 'RepoNotFound')
  })
})

/** A raw subscribeRepos consumer keeping every frame (from `cursor`). */
function rawSubscription(cursor) {
  const abort = new AbortController()
  const frames = []
  const sub = new Subscription({
    service: PDS_URL.replace(/^http/, 'ws'),
    method: 'com.atproto.sync.subscribeRepos',
    signal: abort.signal,
    getParams: () => ({ cursor: frames.length ? frames[frames.length - 1].seq : cursor }),
    validate: (v) => v,
  })
  const errors = []
  const done = (async () => {
    try {
      for await (const frame of sub) frames.push(frame)
    } catch (e) {
      if (e?.name !== 'AbortError') errors.push(e)
    }
  })()
  return { frames, errors, stop: async () => { abort.abort(); await done } }
}

/**
 * The sync 1.1 check of one #commit over only the blocks it carries:
 * signature, the ops' CIDs in the new tree, and the tree with the ops
 * inverted has `prevData` as root.
 */
async function verifyInversion(evt, key) {
  const { root, blocks } = await readCarWithRoot(evt.blocks)
  assert.equal(root.toString(), evt.commit.toString(), 'the CAR root is the commit')
  const storage = new MemoryBlockstore(blocks)
  const commit = await storage.readObj(root, def.commit)
  assert.equal(commit.did, evt.repo)
  assert.equal(commit.rev, evt.rev)
  assert.ok(await verifyCommitSig(commit, key), `signature of ${evt.seq}`)
  let mst = MST.load(storage, commit.data)
  for (const op of [...evt.ops].reverse()) {
    const found = await mst.get(op.path)
    if (op.action === 'create') {
      assert.equal(found?.toString(), op.cid.toString(), `create ${op.path}`)
      assert.equal(op.prev ?? null, null)
      mst = await mst.delete(op.path)
    } else if (op.action === 'update') {
      assert.equal(found?.toString(), op.cid.toString(), `update ${op.path}`)
      assert.ok(op.prev, `update ${op.path} has prev`)
      mst = await mst.update(op.path, op.prev)
    } else if (op.action === 'delete') {
      assert.equal(found ?? null, null, `delete ${op.path}`)
      assert.ok(op.prev, `delete ${op.path} has prev`)
      mst = await mst.add(op.path, op.prev)
    } else {
      assert.fail(`unknown action ${op.action}`)
    }
  }
  assert.ok(evt.prevData, `#commit ${evt.seq} has prevData`)
  assert.equal((await mst.getPointer()).toString(), evt.prevData.toString(), `inversion of #commit ${evt.seq}`)
  return commit
}

describe('@atproto/sync: the firehose', () => {
  test('a burst of mixed writes across accounts: every #commit verifies, inverts, and a reconnect loses nothing', async () => {
    const raw = rawSubscription(0)
    const errors = []
    const seen = [] // [seq, kind, detail] from the two Firehose connections
    let lastSeq = 0
    const handleEvent = (evt) => {
      lastSeq = evt.seq
      seen.push(evt.event === 'create' || evt.event === 'update' || evt.event === 'delete'
        ? `${evt.seq} ${evt.event} ${evt.collection}/${evt.rkey}`
        : `${evt.seq} ${evt.event}`)
    }
    const firehose = (cursor) =>
      new Firehose({
        idResolver,
        service: PDS_URL.replace(/^http/, 'ws'),
        getCursor: () => (lastSeq > 0 ? lastSeq : cursor),
        handleEvent,
        onError: (e) => errors.push(e),
        unauthenticatedHandles: true, // *.test handles do not resolve
        subscriptionReconnectDelay: 200,
      })
    let first = firehose(0)
    first.start()

    const accounts = await Promise.all(['ann', 'ben', 'cat'].map((n) => newAccount(`fh-${n}`)))
    const expected = new Map() // did -> count of ops by action
    const burst = async ({ agent, did }, rounds) => {
      const repo = agent.com.atproto.repo
      const count = expected.get(did) ?? { create: 0, update: 0, delete: 0 }
      expected.set(did, count)
      const live = []
      for (let i = 0; i < rounds; i++) {
        const a = (await repo.createRecord({ repo: did, collection: POST, record: post(`${i}a`) })).data
        count.create++
        live.push(a.uri.split('/').pop())
        await repo.putRecord({ repo: did, collection: PROFILE, rkey: 'self', record: { $type: PROFILE, displayName: `round ${i}` } })
        count[i === 0 && !count.profile ? 'create' : 'update']++
        count.profile = true
        const writes = [
          { $type: 'com.atproto.repo.applyWrites#create', collection: POST, value: post(`${i}b`) },
          { $type: 'com.atproto.repo.applyWrites#create', collection: POST, value: post(`${i}c`) },
          { $type: 'com.atproto.repo.applyWrites#update', collection: POST, rkey: live[0], value: post(`${i} edit`) },
        ]
        if (live.length > 1) {
          writes.push({ $type: 'com.atproto.repo.applyWrites#delete', collection: POST, rkey: live.pop() })
          count.delete++
        }
        count.create += 2
        count.update++
        const res = (await repo.applyWrites({ repo: did, writes })).data
        for (const r of res.results) {
          if (r.$type === 'com.atproto.repo.applyWrites#createResult') live.push(r.uri.split('/').pop())
        }
        if (i % 3 === 2) {
          await repo.deleteRecord({ repo: did, collection: POST, rkey: live.pop() })
          count.delete++
        }
      }
    }

    await Promise.all(accounts.map((a) => burst(a, 4)))
    // Disconnect, write more, reconnect with the cursor.
    await first.destroy()
    const cut = lastSeq
    await Promise.all(accounts.map((a) => burst(a, 4)))
    const second = firehose(cut)
    second.start()
    await Promise.all(accounts.map((a) => burst(a, 2)))

    const heads = new Map()
    for (const { did } of accounts) {
      heads.set(did, (await anon().com.atproto.sync.getLatestCommit({ did })).data.rev)
    }
    const caughtUp = () =>
      [...heads].every(([did, rev]) =>
        raw.frames.some((f) => f.repo === did && f.rev === rev),
      ) && lastSeq >= Math.max(...raw.frames.map((f) => f.seq))
    const deadline = Date.now() + 120_000
    while (!caughtUp()) {
      assert.ok(Date.now() < deadline, `firehose did not catch up (last seq ${lastSeq}, errors: ${errors.map((e) => e.cause?.stack ?? e.stack).join('\n')})`)
      await sleep(100)
    }
    await second.destroy()
    await raw.stop()
    assert.deepEqual(raw.errors, [])
    assert.deepEqual(errors.map((e) => `${e.message}: ${e.cause?.stack ?? e.cause}`), [], 'Firehose errors')

    // The raw stream: seqs gap-free from 1; every #commit inverts.
    const seqs = raw.frames.map((f) => f.seq)
    assert.deepEqual(seqs, seqs.map((_, i) => i + 1), 'seqs are 1..n without gaps or repeats')
    const lastCommit = new Map() // did -> { rev, data }
    const expectedSeen = []
    const actions = new Map()
    for (const f of raw.frames) {
      const type = f.$type.split('#')[1]
      if (type === 'commit') {
        const key = await idResolver.did.resolveAtprotoKey(f.repo)
        const prev = lastCommit.get(f.repo)
        if (prev) {
          assert.equal(f.since, prev.rev, `#commit ${f.seq}: since is the previous rev`)
          const commit = await verifyInversion(f, key)
          assert.equal(f.prevData.toString(), prev.data.toString(), `#commit ${f.seq}: prevData is the previous data`)
          lastCommit.set(f.repo, { rev: f.rev, data: commit.data })
        } else {
          // The genesis commit: nothing to invert.
          const { root, blocks } = await readCarWithRoot(f.blocks)
          const commit = await new MemoryBlockstore(blocks).readObj(root, def.commit)
          assert.ok(await verifyCommitSig(commit, key))
          lastCommit.set(f.repo, { rev: f.rev, data: commit.data })
        }
        for (const op of f.ops) {
          expectedSeen.push(`${f.seq} ${op.action} ${op.path}`)
          const c = actions.get(f.repo) ?? { create: 0, update: 0, delete: 0 }
          c[op.action]++
          actions.set(f.repo, c)
        }
      } else if (type === 'sync') {
        const { root, blocks } = await readCarWithRoot(f.blocks)
        const commit = await new MemoryBlockstore(blocks).readObj(root, def.commit)
        assert.equal(commit.rev, f.rev)
        lastCommit.set(f.did, { rev: f.rev, data: commit.data })
        expectedSeen.push(`${f.seq} sync`)
      } else if (type === 'account') {
        expectedSeen.push(`${f.seq} account`)
      } else if (type === 'identity') {
        expectedSeen.push(`${f.seq} identity`)
      }
    }
    for (const { did } of accounts) {
      const { profile, ...want } = expected.get(did)
      assert.deepEqual(actions.get(did), want, `ops of ${did}`)
    }

    // The two Firehose connections together saw every event exactly once.
    assert.deepEqual(seen, expectedSeen, 'Firehose events across the reconnect')
    assert.ok(cut > 0 && cut < lastSeq, `the reconnect happened mid-stream (${cut} of ${lastSeq})`)

    // Each repo as exported is the one the firehose built.
    for (const { agent, did } of accounts) {
      const car = await verifyFullRepo(agent, did)
      const { root, blocks } = await readCarWithRoot(car)
      const commit = await new MemoryBlockstore(blocks).readObj(root, def.commit)
      assert.equal(commit.rev, lastCommit.get(did).rev)
      assert.equal(commit.data.toString(), lastCommit.get(did).data.toString())
    }
  })
})

after(() => {
  // Sockets and timers of the clients must not keep the process alive.
  setTimeout(() => process.exit(process.exitCode ?? 0), 500).unref()
})
