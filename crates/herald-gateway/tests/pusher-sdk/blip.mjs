// A pusher-js client that stays connected while Redis restarts behind Herald. Run by
// crates/herald-gateway/tests/pusher_sdk.rs with HERALD_WS_PORT and PUSHER_KEY.
// It subscribes to "ticks", says "subscribed" on stdout, and records the data of every
// "message" event. When a line with a number arrives on stdin (the last publication
// acknowledged to the publisher), it waits for that event, prints
// "received <JSON array of the data, in arrival order>" and exits.
import readline from 'node:readline';
import Pusher from 'pusher-js';

const env = process.env;
const client = new Pusher(env.PUSHER_KEY, {
  cluster: 'mt1',
  wsHost: '127.0.0.1',
  wsPort: Number(env.HERALD_WS_PORT),
  forceTLS: false,
  enabledTransports: ['ws'],
  disableStats: true,
});
const received = [];
let last = null;
let states = [];
const finish = (code, message) => {
  console.log(message);
  client.disconnect();
  setTimeout(() => process.exit(code), 100);
};
const check = () => {
  if (last !== null && received.includes(last)) {
    finish(0, `received ${JSON.stringify(received)}`);
  }
};
client.connection.bind('state_change', ({ current }) => states.push(current));
const ticks = client.subscribe('ticks');
ticks.bind('pusher:subscription_succeeded', () => console.log('subscribed'));
ticks.bind('message', (data) => {
  received.push(Number(data));
  check();
});
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  last = Number(line.trim());
  check();
});
setTimeout(() => finish(1, `FAILED: not all within 60 s; states ${states}; received ${JSON.stringify(received)}`), 60000);
