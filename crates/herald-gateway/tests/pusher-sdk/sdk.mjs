// Drives Herald with the real pusher-js client and the official Pusher server SDK (npm
// "pusher"). Run by crates/herald-gateway/tests/pusher_sdk.rs with:
//   HERALD_WS_PORT     the WebSocket port of the node the client connects to
//   HERALD_API_PORT    the API port of the node the server SDK publishes through
//   PUSHER_APP_ID, PUSHER_KEY, PUSHER_SECRET
//   PUSHER_MASTER_KEY  the base64 key of end-to-end encrypted channels (the server SDK's)
//   WEBHOOK_PORT       where the nodes send the app's webhooks (this script receives them)
// Every step has a deadline; the first failure exits with status 1 and says which step.
import http from 'node:http';
import Pusher from 'pusher-js';
import PusherServer from 'pusher';

const env = process.env;
const appId = env.PUSHER_APP_ID, key = env.PUSHER_KEY, secret = env.PUSHER_SECRET;
const server = new PusherServer({
  appId, key, secret, host: '127.0.0.1', port: env.HERALD_API_PORT, useTLS: false,
  encryptionMasterKeyBase64: env.PUSHER_MASTER_KEY,
});
const wrong = new PusherServer({
  appId, key, secret: 'not-the-secret', host: '127.0.0.1', port: env.HERALD_API_PORT, useTLS: false,
});

function client(authorize) {
  return new Pusher(key, {
    cluster: 'mt1',
    wsHost: '127.0.0.1',
    wsPort: Number(env.HERALD_WS_PORT),
    forceTLS: false,
    enabledTransports: ['ws'],
    disableStats: true,
    channelAuthorization: {
      customHandler: ({ socketId, channelName }, callback) => callback(null, authorize(socketId, channelName)),
    },
  });
}

function within(step, ms, executor) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${step}: nothing within ${ms} ms`)), ms);
    executor((value) => { clearTimeout(timer); resolve(value); }, (e) => { clearTimeout(timer); reject(e); });
  });
}

function equal(step, got, want) {
  if (JSON.stringify(got) !== JSON.stringify(want)) {
    throw new Error(`${step}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
  }
  console.log(`ok ${step}`);
}

// Webhooks, checked by the server SDK as an app would (`webhook(...).isValid()`).
const hooks = { events: [], invalid: 0 };
const receiver = http.createServer((req, res) => {
  let rawBody = '';
  req.on('data', (chunk) => { rawBody += chunk; });
  req.on('end', () => {
    const webhook = server.webhook({ headers: req.headers, rawBody });
    if (webhook.isValid()) hooks.events.push(...webhook.getEvents());
    else hooks.invalid += 1;
    res.writeHead(200).end();
  });
});
await new Promise((ok) => receiver.listen(Number(env.WEBHOOK_PORT), '127.0.0.1', ok));

const good = client((socketId, channel) => server.authorizeChannel(socketId, channel));
const forged = client((socketId, channel) => wrong.authorizeChannel(socketId, channel));
try {
  await within('connect', 5000, (ok) => good.connection.bind('connected', ok));
  console.log(`ok connect (socket ${good.connection.socket_id})`);

  const news = good.subscribe('news');
  await within('public subscribe', 5000, (ok) => news.bind('pusher:subscription_succeeded', ok));
  console.log('ok public subscribe');
  const greeting = within('public event', 5000, (ok) => news.bind('greeting', ok));
  await server.trigger('news', 'greeting', { hello: 'world' });
  equal('public event', await greeting, { hello: 'world' });

  const orders = good.subscribe('private-orders');
  await within('private subscribe', 5000, (ok) => orders.bind('pusher:subscription_succeeded', ok));
  console.log('ok private subscribe');
  const shipped = within('private event', 5000, (ok) => orders.bind('shipped', ok));
  await server.trigger(['private-orders', 'news'], 'shipped', { id: 7 });
  equal('private event', await shipped, { id: 7 });

  // End-to-end encrypted: the server SDK encrypts, Herald passes the ciphertext through, and
  // pusher-js decrypts with the shared secret of its authorization.
  const vault = good.subscribe('private-encrypted-vault');
  await within('encrypted subscribe', 5000, (ok) => vault.bind('pusher:subscription_succeeded', ok));
  const secretEvent = within('encrypted event', 5000, (ok) => vault.bind('secret', ok));
  await server.trigger('private-encrypted-vault', 'secret', { code: 42 });
  equal('encrypted event', await secretEvent, { code: 42 });

  const refused = forged.subscribe('private-orders');
  const error = await within('forged authorization', 5000, (ok) => refused.bind('pusher:subscription_error', ok));
  equal('forged authorization', error.status, 401);

  let failed = null;
  try {
    await wrong.trigger('news', 'greeting', {});
  } catch (e) {
    failed = e.status;
  }
  equal('a request signed with the wrong secret', failed, 401);

  // Client events: relayed to the other subscribers, not echoed to the sender.
  const other = client((socketId, channel) => server.authorizeChannel(socketId, channel));
  try {
    const theirs = other.subscribe('private-orders');
    await within('second client subscribes', 5000, (ok) => theirs.bind('pusher:subscription_succeeded', ok));
    let echoed = false;
    orders.bind('client-typing', () => { echoed = true; });
    const typing = within('client event', 5000, (ok) => theirs.bind('client-typing', ok));
    if (!orders.trigger('client-typing', { who: 'ann' })) throw new Error('client event: not sent');
    equal('client event', await typing, { who: 'ann' });

    // socket_id: the triggering connection is left out.
    let excluded = false;
    orders.bind('moved', () => { excluded = true; });
    const moved = within('socket_id exclusion', 5000, (ok) => theirs.bind('moved', ok));
    await server.trigger('private-orders', 'moved', { to: 2 }, { socket_id: good.connection.socket_id });
    equal('socket_id exclusion', await moved, { to: 2 });
    await new Promise((r) => setTimeout(r, 300));
    equal('not echoed to the sender, nor sent to the excluded socket', [echoed, excluded], [false, false]);
  } finally {
    other.disconnect();
  }

  // Presence: the member list on subscription, then joins and leaves.
  const member = (id) => client((socketId, channel) =>
    server.authorizeChannel(socketId, channel, { user_id: id, user_info: { name: id.toUpperCase() } }));
  const ann = member('ann');
  const bob = member('bob');
  try {
    const annRoom = ann.subscribe('presence-room');
    const annMembers = await within('presence subscribe', 5000, (ok) => annRoom.bind('pusher:subscription_succeeded', ok));
    equal('presence subscribe', [annMembers.count, annMembers.me.id, annMembers.me.info], [1, 'ann', { name: 'ANN' }]);
    const added = within('member_added', 5000, (ok) => annRoom.bind('pusher:member_added', ok));
    const bobRoom = bob.subscribe('presence-room');
    const bobMembers = await within('second member subscribes', 5000, (ok) => bobRoom.bind('pusher:subscription_succeeded', ok));
    equal('second member sees both', bobMembers.count, 2);
    equal('member_added', (await added).info, { name: 'BOB' });
    const listed = await (await server.get({
      path: '/channels', params: { filter_by_prefix: 'presence-', info: 'user_count' },
    })).json();
    equal('channel query', listed, { channels: { 'presence-room': { user_count: 2 } } });
    const users = await (await server.get({ path: '/channels/presence-room/users' })).json();
    equal('user query', users.users.map((u) => u.id), ['ann', 'bob']);
    const removed = within('member_removed', 5000, (ok) => annRoom.bind('pusher:member_removed', ok));
    bob.disconnect();
    equal('member_removed', (await removed).id, 'bob');
  } finally {
    ann.disconnect();
    bob.disconnect();
  }

  // User sign-in, with the server SDK's authenticateUser.
  const user = new Pusher(key, {
    cluster: 'mt1', wsHost: '127.0.0.1', wsPort: Number(env.HERALD_WS_PORT), forceTLS: false,
    enabledTransports: ['ws'], disableStats: true,
    userAuthentication: {
      customHandler: ({ socketId }, callback) =>
        callback(null, server.authenticateUser(socketId, { id: 'ann', name: 'Ann' })),
    },
  });
  try {
    const signedIn = within('signin', 5000, (ok) => user.bind('pusher:signin_success', ok));
    user.signin();
    const success = await signedIn;
    equal('signin', JSON.parse(success.user_data).id, 'ann');

    // Events to the signed-in user, and the termination of the user's connections.
    await new Promise((r) => setTimeout(r, 300)); // pusher-js subscribes to its user channel
    const notice = within('sendToUser', 5000, (ok) => user.user.bind('notice', ok));
    await server.sendToUser('ann', 'notice', { text: 'hello ann' });
    equal('sendToUser', await notice, { text: 'hello ann' });
    const closed = within('terminateUserConnections', 5000, (ok) =>
      user.connection.bind('state_change', (s) => { if (s.current !== 'connected') ok(s.current); }));
    await server.terminateUserConnections('ann');
    console.log(`ok terminateUserConnections (connection ${await closed})`);
  } finally {
    user.disconnect();
  }

  const batched = within('batch_events', 5000, (ok) => news.bind('batched', ok));
  await server.triggerBatch([
    { channel: 'other-3', name: 'batched', data: { n: 0 } },
    { channel: 'news', name: 'batched', data: { n: 1 } },
  ]);
  equal('batch_events', await batched, { n: 1 });

  const many = within('batch of channels', 5000, (ok) => news.bind('many', ok));
  await server.trigger(['news', 'other-1', 'other-2'], 'many', 'plain text');
  equal('batch of channels', await many, 'plain text');

  const seen = (want) => hooks.events.some((e) => Object.entries(want).every(([k, v]) => e[k] === v));
  const wanted = [
    { name: 'channel_occupied', channel: 'private-orders' },
    { name: 'client_event', channel: 'private-orders', event: 'client-typing' },
    { name: 'member_added', channel: 'presence-room', user_id: 'ann' },
    { name: 'member_added', channel: 'presence-room', user_id: 'bob' },
    { name: 'member_removed', channel: 'presence-room', user_id: 'bob' },
    { name: 'channel_vacated', channel: 'presence-room' },
  ];
  await within('webhooks', 10000, (ok) => {
    const check = setInterval(() => {
      if (wanted.every(seen)) { clearInterval(check); ok(); }
    }, 50);
  });
  equal('webhooks, every one valid for the server SDK', hooks.invalid, 0);
  console.log('all Pusher SDK steps passed');
  process.exitCode = 0;
} catch (e) {
  console.error(`FAILED ${e.message}`);
  process.exitCode = 1;
} finally {
  good.disconnect();
  forged.disconnect();
  receiver.close();
  // Clients keep timers (activity checks, reconnection back-offs) that would hold Node open.
  setTimeout(() => process.exit(process.exitCode), 100);
}
