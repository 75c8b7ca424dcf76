#!/usr/bin/env node
// WildDuck's side of its access tokens, for hookrouter's tests (tests/wildduck_tokens.rs).
//
//   node wildduck-token.js <redis url> <secret> <user> <role> <ttl s> <age ms> [authVersion|-]
//
// Issues a token the way WildDuck 1.45's userHandler.setAuthToken() does (lib/user-handler.js):
// 20 random bytes in hex, stored in WildDuck's Redis under tn:token:<sha256 hex of the token>
// as a hash {user, role, created, ttl, authVersion, s}, where s is the HMAC-SHA256 with
// WildDuck's api.accessControl.secret of JSON.stringify({token, user, authVersion, role}), and
// the key expires after ttl seconds. WildDuck always issues role "user"; the role, the token's
// age (created = now - age) and a missing authVersion ("-", as older tokens have none) are
// parameters here so other cases can be made. Prints {"token": ..., "key": ...}.
'use strict';

const crypto = require('crypto');
const Redis = require('ioredis');

const [url, secret, user, role, ttlArg, ageArg, authVersionArg] = process.argv.slice(2);

async function main() {
    const redis = new Redis(url);
    const accessToken = crypto.randomBytes(20).toString('hex');
    const tokenHash = crypto.createHash('sha256').update(accessToken).digest('hex');
    const key = 'tn:token:' + tokenHash;
    const ttl = Number(ttlArg);
    const withVersion = authVersionArg !== undefined && authVersionArg !== '-';
    const authVersion = withVersion ? Number(authVersionArg) || 0 : undefined;

    const signed = withVersion
        ? { token: accessToken, user: user.toString(), authVersion, role }
        : { token: accessToken, user: user.toString(), role };
    const tokenData = {
        user: user.toString(),
        role,
        created: Date.now() - Number(ageArg),
        ttl,
        s: crypto.createHmac('sha256', secret).update(JSON.stringify(signed)).digest('hex')
    };
    if (withVersion) {
        tokenData.authVersion = authVersion;
    }

    const multi = redis.multi().hmset(key, tokenData);
    if (ttl > 0) {
        multi.expire(key, ttl);
    }
    await multi.exec();
    await redis.quit();
    process.stdout.write(JSON.stringify({ token: accessToken, key }) + '\n');
}

main().catch(err => {
    console.error(err);
    process.exit(1);
});
