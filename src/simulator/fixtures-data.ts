/**
 * Payload fixtures copied from `shared/data/example-payloads.json` (hand-built, realistic Discord v10 JSON;
 * not captured traffic). Every entry is a full envelope `{ op, s, t, d }`. All guild ids route to shard 3 of 16.
 * Data only: generators live in `fixtures.ts`. Do not edit by hand; regenerate from the shared file.
 * @packageDocumentation
 */

/** A gateway envelope as stored in the fixtures. */
export interface FixtureEnvelope {
  op: number;
  s?: number | null;
  t?: string | null;
  d: unknown;
}

/** `control` fixtures. */
export const CONTROL_FIXTURES: Readonly<Record<string, FixtureEnvelope>> = {
 "HELLO": {
  "op": 10,
  "s": null,
  "t": null,
  "d": {
   "heartbeat_interval": 41250
  }
 },
 "HEARTBEAT_ACK": {
  "op": 11,
  "s": null,
  "t": null,
  "d": null
 },
 "HEARTBEAT_REQUEST": {
  "op": 1,
  "s": null,
  "t": null,
  "d": null
 },
 "RECONNECT": {
  "op": 7,
  "s": null,
  "t": null,
  "d": null
 },
 "INVALID_SESSION_NOT_RESUMABLE": {
  "op": 9,
  "s": null,
  "t": null,
  "d": false
 },
 "INVALID_SESSION_RESUMABLE": {
  "op": 9,
  "s": null,
  "t": null,
  "d": true
 }
};

/** `send` fixtures. */
export const SEND_FIXTURES: Readonly<Record<string, FixtureEnvelope>> = {
 "IDENTIFY": {
  "op": 2,
  "d": {
   "token": "Bot-token-placeholder",
   "intents": 36739,
   "properties": {
    "os": "linux",
    "browser": "our_library",
    "device": "our_library"
   },
   "compress": false,
   "large_threshold": 250,
   "shard": [
    3,
    16
   ],
   "presence": {
    "since": null,
    "activities": [
     {
      "name": "Custom Status",
      "state": "Type /help",
      "type": 4
     }
    ],
    "status": "online",
    "afk": false
   }
  }
 },
 "RESUME": {
  "op": 6,
  "d": {
   "token": "Bot-token-placeholder",
   "session_id": "b2e335a0df57db499e0c5e66876c3572",
   "seq": 1199
  }
 },
 "HEARTBEAT": {
  "op": 1,
  "d": 1048
 },
 "REQUEST_GUILD_MEMBERS": {
  "op": 8,
  "d": {
   "guild_id": "551460001558822912",
   "query": "",
   "limit": 0,
   "presences": false,
   "nonce": "c0ffee01"
  }
 },
 "REQUEST_SOUNDBOARD_SOUNDS": {
  "op": 31,
  "d": {
   "guild_ids": [
    "551460001558822912"
   ]
  }
 },
 "UPDATE_VOICE_STATE": {
  "op": 4,
  "d": {
   "guild_id": "551460001558822912",
   "channel_id": "551460004901814286",
   "self_mute": false,
   "self_deaf": true
  }
 },
 "UPDATE_PRESENCE": {
  "op": 3,
  "d": {
   "since": null,
   "activities": [
    {
     "name": "Pixel Forge",
     "type": 3
    }
   ],
   "status": "online",
   "afk": false
  }
 }
};

/** `dispatch` fixtures. */
export const DISPATCH_FIXTURES: Readonly<Record<string, FixtureEnvelope>> = {
 "READY": {
  "op": 0,
  "s": 1,
  "t": "READY",
  "d": {
   "v": 10,
   "user": {
    "id": "853924865609170944",
    "username": "Quill",
    "discriminator": "4821",
    "global_name": null,
    "avatar": "63d5ed47931689338a6c683510bbe463",
    "bot": true,
    "avatar_decoration_data": null,
    "collectibles": null,
    "primary_guild": null,
    "public_flags": 65536,
    "verified": true,
    "mfa_enabled": false,
    "email": null,
    "flags": 65536
   },
   "guilds": [
    {
     "id": "551460001558822912",
     "unavailable": true
    },
    {
     "id": "348783221158182912",
     "unavailable": true
    },
    {
     "id": "508377327218982912",
     "unavailable": true
    },
    {
     "id": "700620315046182912",
     "unavailable": true
    },
    {
     "id": "1017790731399462912",
     "unavailable": true
    },
    {
     "id": "1345154816422182912",
     "unavailable": true
    }
   ],
   "session_id": "b2e335a0df57db499e0c5e66876c3572",
   "resume_gateway_url": "wss://gateway-us-east1-c.discord.gg",
   "shard": [
    3,
    16
   ],
   "application": {
    "id": "853924865609170944",
    "flags": 8671232
   }
  }
 },
 "GUILD_CREATE": {
  "op": 0,
  "s": 2,
  "t": "GUILD_CREATE",
  "d": {
   "id": "551460001558822912",
   "name": "Pixel Forge",
   "icon": "a_7a7e417464ae499fb075d325257ff34c",
   "splash": null,
   "discovery_splash": null,
   "description": "Indie game dev hangout — share progress, get feedback, find collaborators.",
   "banner": null,
   "owner_id": "224530200342429697",
   "application_id": null,
   "region": null,
   "afk_channel_id": null,
   "afk_timeout": 300,
   "widget_enabled": false,
   "widget_channel_id": null,
   "verification_level": 2,
   "default_message_notifications": 1,
   "explicit_content_filter": 2,
   "mfa_level": 0,
   "nsfw_level": 0,
   "features": [
    "COMMUNITY",
    "NEWS",
    "WELCOME_SCREEN_ENABLED",
    "MEMBER_VERIFICATION_GATE_ENABLED",
    "PREVIEW_ENABLED",
    "INVITE_SPLASH",
    "ANIMATED_ICON"
   ],
   "system_channel_id": "551460004062953483",
   "system_channel_flags": 0,
   "rules_channel_id": "551463734476931084",
   "public_updates_channel_id": "551463734476931084",
   "safety_alerts_channel_id": null,
   "max_presences": null,
   "max_members": 500000,
   "vanity_url_code": null,
   "premium_tier": 1,
   "premium_subscription_count": 4,
   "premium_progress_bar_enabled": false,
   "preferred_locale": "en-US",
   "max_video_channel_users": 25,
   "max_stage_video_channel_users": 50,
   "incidents_data": null,
   "roles": [
    {
     "id": "551460001558822912",
     "name": "@everyone",
     "color": 0,
     "colors": {
      "primary_color": 0,
      "secondary_color": null,
      "tertiary_color": null
     },
     "hoist": false,
     "icon": null,
     "unicode_emoji": null,
     "position": 0,
     "permissions": "2222085186636353",
     "managed": false,
     "mentionable": false,
     "flags": 0
    },
    {
     "id": "551461217894531077",
     "name": "Admin",
     "color": 15158332,
     "colors": {
      "primary_color": 15158332,
      "secondary_color": null,
      "tertiary_color": null
     },
     "hoist": true,
     "icon": null,
     "unicode_emoji": null,
     "position": 5,
     "permissions": "8",
     "managed": false,
     "mentionable": false,
     "flags": 0
    },
    {
     "id": "552067714252931078",
     "name": "Moderator",
     "color": 3447003,
     "colors": {
      "primary_color": 3447003,
      "secondary_color": null,
      "tertiary_color": null
     },
     "hoist": true,
     "icon": null,
     "unicode_emoji": null,
     "position": 4,
     "permissions": "1099780063486",
     "managed": false,
     "mentionable": true,
     "flags": 0
    },
    {
     "id": "860187996979331081",
     "name": "Quill",
     "color": 0,
     "colors": {
      "primary_color": 0,
      "secondary_color": null,
      "tertiary_color": null
     },
     "hoist": false,
     "icon": null,
     "unicode_emoji": null,
     "position": 3,
     "permissions": "277025508352",
     "managed": true,
     "mentionable": false,
     "flags": 0,
     "tags": {
      "bot_id": "853924865609170944"
     }
    },
    {
     "id": "584350433280131080",
     "name": "Server Booster",
     "color": 16023551,
     "colors": {
      "primary_color": 16023551,
      "secondary_color": null,
      "tertiary_color": null
     },
     "hoist": false,
     "icon": null,
     "unicode_emoji": null,
     "position": 2,
     "permissions": "0",
     "managed": true,
     "mentionable": false,
     "flags": 0,
     "tags": {
      "premium_subscriber": null
     }
    },
    {
     "id": "552460301107331079",
     "name": "Member",
     "color": 10181046,
     "colors": {
      "primary_color": 10181046,
      "secondary_color": null,
      "tertiary_color": null
     },
     "hoist": false,
     "icon": null,
     "unicode_emoji": null,
     "position": 1,
     "permissions": "0",
     "managed": false,
     "mentionable": false,
     "flags": 0
    }
   ],
   "emojis": [
    {
     "id": "676872585216131089",
     "name": "pixelheart",
     "roles": [],
     "require_colons": true,
     "managed": false,
     "animated": false,
     "available": true
    }
   ],
   "stickers": [],
   "joined_at": "2021-07-01T16:00:02.481000+00:00",
   "large": true,
   "unavailable": false,
   "member_count": 4821,
   "voice_states": [
    {
     "channel_id": "551460004901814286",
     "user_id": "738461180800139267",
     "session_id": "dc50101d2c25152e8f28e3cf410fef6b",
     "deaf": false,
     "mute": false,
     "self_deaf": false,
     "self_mute": true,
     "self_video": false,
     "suppress": false,
     "request_to_speak_timestamp": null
    }
   ],
   "members": [
    {
     "user": {
      "id": "853924865609170944",
      "username": "Quill",
      "discriminator": "4821",
      "global_name": null,
      "avatar": "63d5ed47931689338a6c683510bbe463",
      "bot": true,
      "avatar_decoration_data": null,
      "collectibles": null,
      "primary_guild": null,
      "public_flags": 65536
     },
     "nick": null,
     "avatar": null,
     "banner": null,
     "roles": [
      "860187996979331081"
     ],
     "joined_at": "2021-07-01T16:00:02.481000+00:00",
     "premium_since": null,
     "deaf": false,
     "mute": false,
     "flags": 0,
     "pending": false,
     "communication_disabled_until": null
    },
    {
     "user": {
      "id": "224530200342429697",
      "username": "marisol.dev",
      "discriminator": "0",
      "global_name": "Marisol",
      "avatar": "72122ce96bfec66e2396d2e25225d70a",
      "avatar_decoration_data": null,
      "collectibles": null,
      "primary_guild": null,
      "public_flags": 0
     },
     "nick": null,
     "avatar": null,
     "banner": null,
     "roles": [
      "551461217894531077",
      "552460301107331079"
     ],
     "joined_at": "2019-03-02T17:45:10.000000+00:00",
     "premium_since": null,
     "deaf": false,
     "mute": false,
     "flags": 0,
     "pending": false,
     "communication_disabled_until": null
    },
    {
     "user": {
      "id": "404843663047393282",
      "username": "kestrel_",
      "discriminator": "0",
      "global_name": "Kestrel",
      "avatar": "a_ad148a3ca8bd0ef3b48c52454c493ec5",
      "avatar_decoration_data": null,
      "collectibles": null,
      "primary_guild": null,
      "public_flags": 0
     },
     "nick": "Kes (mod)",
     "avatar": null,
     "banner": null,
     "roles": [
      "552067714252931078",
      "552460301107331079"
     ],
     "joined_at": "2019-03-04T09:58:41.220000+00:00",
     "premium_since": null,
     "deaf": false,
     "mute": false,
     "flags": 0,
     "pending": false,
     "communication_disabled_until": null
    },
    {
     "user": {
      "id": "738461180800139267",
      "username": "tofu.alice",
      "discriminator": "0",
      "global_name": "Alice 🍵",
      "avatar": "6384e2b2184bcbf58eccf10ca7a6563c",
      "avatar_decoration_data": null,
      "collectibles": null,
      "primary_guild": null,
      "public_flags": 0
     },
     "nick": null,
     "avatar": null,
     "banner": null,
     "roles": [
      "552460301107331079",
      "584350433280131080"
     ],
     "joined_at": "2020-08-01T12:00:09.514000+00:00",
     "premium_since": "2025-12-24T08:30:11.000000+00:00",
     "deaf": false,
     "mute": false,
     "flags": 0,
     "pending": false,
     "communication_disabled_until": null
    }
   ],
   "channels": [
    {
     "id": "551460003643523082",
     "type": 4,
     "name": "Text Channels",
     "position": 0,
     "parent_id": null,
     "permission_overwrites": [],
     "flags": 0
    },
    {
     "id": "551460004062953483",
     "type": 0,
     "name": "general",
     "topic": "Say hi 👋 — be kind, no spam.",
     "position": 0,
     "parent_id": "551460003643523082",
     "nsfw": false,
     "rate_limit_per_user": 0,
     "last_message_id": "1560260460413059088",
     "last_pin_timestamp": "2026-09-30T17:02:44+00:00",
     "permission_overwrites": [],
     "flags": 0
    },
    {
     "id": "551463734476931084",
     "type": 5,
     "name": "announcements",
     "topic": null,
     "position": 1,
     "parent_id": "551460003643523082",
     "nsfw": false,
     "rate_limit_per_user": 0,
     "last_message_id": "1555232823705731090",
     "default_auto_archive_duration": 1440,
     "permission_overwrites": [
      {
       "id": "551460001558822912",
       "type": 0,
       "allow": "0",
       "deny": "2048"
      },
      {
       "id": "552067714252931078",
       "type": 0,
       "allow": "2048",
       "deny": "0"
      }
     ],
     "flags": 0
    },
    {
     "id": "551460004482383885",
     "type": 4,
     "name": "Voice Channels",
     "position": 1,
     "parent_id": null,
     "permission_overwrites": [],
     "flags": 0
    },
    {
     "id": "551460004901814286",
     "type": 2,
     "name": "Lounge",
     "position": 0,
     "parent_id": "551460004482383885",
     "nsfw": false,
     "bitrate": 64000,
     "user_limit": 0,
     "rtc_region": null,
     "rate_limit_per_user": 0,
     "last_message_id": null,
     "permission_overwrites": [],
     "flags": 0
    }
   ],
   "threads": [
    {
     "id": "1560037650595971087",
     "type": 11,
     "guild_id": "551460001558822912",
     "parent_id": "551460004062953483",
     "owner_id": "738461180800139267",
     "name": "Devlog #42 feedback",
     "last_message_id": "1560215656857731091",
     "rate_limit_per_user": 0,
     "flags": 0,
     "message_count": 17,
     "member_count": 5,
     "total_message_sent": 17,
     "thread_metadata": {
      "archived": false,
      "auto_archive_duration": 4320,
      "archive_timestamp": "2026-10-14T21:12:40.112000+00:00",
      "locked": false,
      "create_timestamp": "2026-10-14T21:12:40.112000+00:00"
     }
    }
   ],
   "presences": [
    {
     "user": {
      "id": "224530200342429697"
     },
     "status": "online",
     "activities": [],
     "client_status": {
      "desktop": "online"
     }
    },
    {
     "user": {
      "id": "404843663047393282"
     },
     "status": "dnd",
     "activities": [
      {
       "id": "custom",
       "name": "Custom Status",
       "type": 4,
       "state": "reviewing reports",
       "created_at": 1792062000000
      }
     ],
     "client_status": {
      "desktop": "dnd",
      "mobile": "dnd"
     }
    },
    {
     "user": {
      "id": "738461180800139267"
     },
     "status": "online",
     "activities": [
      {
       "id": "ec0b28a479ff6e2b",
       "name": "Godot Engine",
       "type": 0,
       "created_at": 1792063800000,
       "timestamps": {
        "start": 1792063800000
       }
      }
     ],
     "client_status": {
      "desktop": "online"
     }
    }
   ],
   "stage_instances": [],
   "guild_scheduled_events": [],
   "soundboard_sounds": []
  }
 },
 "MESSAGE_CREATE": {
  "op": 0,
  "s": 1043,
  "t": "MESSAGE_CREATE",
  "d": {
   "type": 0,
   "tts": false,
   "timestamp": "2026-10-15T12:00:03.775000+00:00",
   "pinned": false,
   "mentions": [
    {
     "id": "404843663047393282",
     "username": "kestrel_",
     "discriminator": "0",
     "global_name": "Kestrel",
     "avatar": "a_ad148a3ca8bd0ef3b48c52454c493ec5",
     "avatar_decoration_data": null,
     "collectibles": null,
     "primary_guild": null,
     "public_flags": 0,
     "member": {
      "roles": [
       "552067714252931078",
       "552460301107331079"
      ],
      "nick": "Kes (mod)",
      "avatar": null,
      "banner": null,
      "joined_at": "2019-03-04T09:58:41.220000+00:00",
      "premium_since": null,
      "deaf": false,
      "mute": false,
      "flags": 0,
      "pending": false,
      "communication_disabled_until": null
     }
    }
   ],
   "mention_roles": [],
   "mention_everyone": false,
   "member": {
    "roles": [
     "552460301107331079",
     "584350433280131080"
    ],
    "nick": null,
    "avatar": null,
    "banner": null,
    "joined_at": "2020-08-01T12:00:09.514000+00:00",
    "premium_since": "2025-12-24T08:30:11.000000+00:00",
    "deaf": false,
    "mute": false,
    "flags": 0,
    "pending": false,
    "communication_disabled_until": null
   },
   "id": "1560260971174428692",
   "flags": 0,
   "embeds": [],
   "edited_timestamp": null,
   "content": "<@404843663047393282> pushed the new tileset, can you take a look when you have a sec?",
   "components": [],
   "channel_type": 0,
   "channel_id": "551460004062953483",
   "author": {
    "id": "738461180800139267",
    "username": "tofu.alice",
    "discriminator": "0",
    "global_name": "Alice 🍵",
    "avatar": "6384e2b2184bcbf58eccf10ca7a6563c",
    "avatar_decoration_data": null,
    "collectibles": null,
    "primary_guild": null,
    "public_flags": 64
   },
   "attachments": [],
   "guild_id": "551460001558822912",
   "nonce": "1560260971012345856"
  }
 },
 "PRESENCE_UPDATE": {
  "op": 0,
  "s": 1044,
  "t": "PRESENCE_UPDATE",
  "d": {
   "user": {
    "id": "1104364433381130244"
   },
   "status": "idle",
   "guild_id": "551460001558822912",
   "client_status": {
    "desktop": "idle"
   },
   "activities": [
    {
     "id": "custom",
     "name": "Custom Status",
     "type": 4,
     "state": "brb lunch",
     "emoji": {
      "name": "🍜"
     },
     "created_at": 1792065604100
    },
    {
     "id": "spotify:1",
     "name": "Spotify",
     "type": 2,
     "details": "Midnight City",
     "state": "M83",
     "created_at": 1792065604100,
     "timestamps": {
      "start": 1792065540000,
      "end": 1792065783000
     },
     "assets": {
      "large_image": "spotify:ab67616d0000b273fff2cb485c36a6d8f639bdba",
      "large_text": "Hurry Up, We're Dreaming"
     },
     "party": {
      "id": "spotify:1104364433381130244"
     },
     "sync_id": "6GyFP1nfCDB8lbD2bG0Hq9",
     "session_id": "774672b85336f700b0966ede548070a4",
     "flags": 48
    }
   ]
  }
 },
 "TYPING_START": {
  "op": 0,
  "s": 1045,
  "t": "TYPING_START",
  "d": {
   "user_id": "404843663047393282",
   "timestamp": 1792065606,
   "member": {
    "user": {
     "id": "404843663047393282",
     "username": "kestrel_",
     "discriminator": "0",
     "global_name": "Kestrel",
     "avatar": "a_ad148a3ca8bd0ef3b48c52454c493ec5",
     "avatar_decoration_data": null,
     "collectibles": null,
     "primary_guild": null,
     "public_flags": 0
    },
    "nick": "Kes (mod)",
    "avatar": null,
    "banner": null,
    "roles": [
     "552067714252931078",
     "552460301107331079"
    ],
    "joined_at": "2019-03-04T09:58:41.220000+00:00",
    "premium_since": null,
    "deaf": false,
    "mute": false,
    "flags": 0,
    "pending": false,
    "communication_disabled_until": null
   },
   "channel_id": "551460004062953483",
   "guild_id": "551460001558822912"
  }
 },
 "GUILD_MEMBER_UPDATE": {
  "op": 0,
  "s": 1046,
  "t": "GUILD_MEMBER_UPDATE",
  "d": {
   "guild_id": "551460001558822912",
   "user": {
    "id": "1104364433381130244",
    "username": "bobby.tables",
    "discriminator": "0",
    "global_name": null,
    "avatar": null,
    "avatar_decoration_data": null,
    "collectibles": null,
    "primary_guild": null,
    "public_flags": 0
   },
   "roles": [
    "552460301107331079"
   ],
   "nick": "Bobby",
   "avatar": null,
   "banner": null,
   "joined_at": "2026-10-15T11:52:37.090000+00:00",
   "premium_since": null,
   "deaf": false,
   "mute": false,
   "pending": false,
   "flags": 3,
   "communication_disabled_until": null,
   "avatar_decoration_data": null,
   "collectibles": null
  }
 },
 "INTERACTION_CREATE": {
  "op": 0,
  "s": 1047,
  "t": "INTERACTION_CREATE",
  "d": {
   "version": 1,
   "type": 2,
   "id": "1560260993932722197",
   "application_id": "853924865609170944",
   "token": "aW50ZXJhY3Rpb24657a5bcc6b27ba4c00aa30e62b3fa8b16:6891307c6734bc06c78382bbQm9vdHN0cmFwVG9rZW5Ob3RSZWFs",
   "guild_id": "551460001558822912",
   "guild": {
    "id": "551460001558822912",
    "locale": "en-US",
    "features": [
     "COMMUNITY",
     "NEWS",
     "WELCOME_SCREEN_ENABLED",
     "MEMBER_VERIFICATION_GATE_ENABLED",
     "PREVIEW_ENABLED",
     "INVITE_SPLASH",
     "ANIMATED_ICON"
    ]
   },
   "channel_id": "551460004062953483",
   "channel": {
    "id": "551460004062953483",
    "type": 0,
    "guild_id": "551460001558822912",
    "name": "general",
    "topic": "Say hi 👋 — be kind, no spam.",
    "position": 0,
    "parent_id": "551460003643523082",
    "nsfw": false,
    "rate_limit_per_user": 0,
    "last_message_id": "1560260460413059088",
    "flags": 0,
    "permissions": "2222085186636353"
   },
   "member": {
    "user": {
     "id": "738461180800139267",
     "username": "tofu.alice",
     "discriminator": "0",
     "global_name": "Alice 🍵",
     "avatar": "6384e2b2184bcbf58eccf10ca7a6563c",
     "avatar_decoration_data": null,
     "collectibles": null,
     "primary_guild": null,
     "public_flags": 0
    },
    "nick": null,
    "avatar": null,
    "banner": null,
    "roles": [
     "552460301107331079",
     "584350433280131080"
    ],
    "joined_at": "2020-08-01T12:00:09.514000+00:00",
    "premium_since": "2025-12-24T08:30:11.000000+00:00",
    "deaf": false,
    "mute": false,
    "flags": 0,
    "pending": false,
    "communication_disabled_until": null,
    "permissions": "2222085186636353"
   },
   "data": {
    "id": "860459787878531094",
    "name": "remind",
    "type": 1,
    "options": [
     {
      "name": "in",
      "type": 3,
      "value": "2h"
     },
     {
      "name": "text",
      "type": 3,
      "value": "playtest build 0.9.3"
     }
    ]
   },
   "app_permissions": "2248473465835073",
   "locale": "en-GB",
   "guild_locale": "en-US",
   "entitlements": [],
   "authorizing_integration_owners": {
    "0": "551460001558822912"
   },
   "context": 0,
   "attachment_size_limit": 26214400
  }
 },
 "VOICE_STATE_UPDATE": {
  "op": 0,
  "s": 1048,
  "t": "VOICE_STATE_UPDATE",
  "d": {
   "member": {
    "user": {
     "id": "404843663047393282",
     "username": "kestrel_",
     "discriminator": "0",
     "global_name": "Kestrel",
     "avatar": "a_ad148a3ca8bd0ef3b48c52454c493ec5",
     "avatar_decoration_data": null,
     "collectibles": null,
     "primary_guild": null,
     "public_flags": 0
    },
    "nick": "Kes (mod)",
    "avatar": null,
    "banner": null,
    "roles": [
     "552067714252931078",
     "552460301107331079"
    ],
    "joined_at": "2019-03-04T09:58:41.220000+00:00",
    "premium_since": null,
    "deaf": false,
    "mute": false,
    "flags": 0,
    "pending": false,
    "communication_disabled_until": null
   },
   "user_id": "404843663047393282",
   "suppress": false,
   "session_id": "dfedfbeeae9df50a4b7e804fb551ddf7",
   "self_video": false,
   "self_mute": false,
   "self_deaf": false,
   "request_to_speak_timestamp": null,
   "mute": false,
   "guild_id": "551460001558822912",
   "deaf": false,
   "channel_id": "551460004901814286"
  }
 },
 "MESSAGE_UPDATE": {
  "op": 0,
  "s": 1049,
  "t": "MESSAGE_UPDATE",
  "d": {
   "type": 0,
   "tts": false,
   "timestamp": "2026-10-15T12:00:03.775000+00:00",
   "pinned": false,
   "mentions": [
    {
     "id": "404843663047393282",
     "username": "kestrel_",
     "discriminator": "0",
     "global_name": "Kestrel",
     "avatar": "a_ad148a3ca8bd0ef3b48c52454c493ec5",
     "avatar_decoration_data": null,
     "collectibles": null,
     "primary_guild": null,
     "public_flags": 0,
     "member": {
      "roles": [
       "552067714252931078",
       "552460301107331079"
      ],
      "nick": "Kes (mod)",
      "avatar": null,
      "banner": null,
      "joined_at": "2019-03-04T09:58:41.220000+00:00",
      "premium_since": null,
      "deaf": false,
      "mute": false,
      "flags": 0,
      "pending": false,
      "communication_disabled_until": null
     }
    }
   ],
   "mention_roles": [],
   "mention_everyone": false,
   "member": {
    "roles": [
     "552460301107331079",
     "584350433280131080"
    ],
    "nick": null,
    "avatar": null,
    "banner": null,
    "joined_at": "2020-08-01T12:00:09.514000+00:00",
    "premium_since": "2025-12-24T08:30:11.000000+00:00",
    "deaf": false,
    "mute": false,
    "flags": 0,
    "pending": false,
    "communication_disabled_until": null
   },
   "id": "1560260971174428692",
   "flags": 0,
   "embeds": [],
   "edited_timestamp": "2026-10-15T12:00:21.004000+00:00",
   "content": "<@404843663047393282> pushed the new tileset, can you take a look when you have a sec? (the grass one)",
   "components": [],
   "channel_type": 0,
   "channel_id": "551460004062953483",
   "author": {
    "id": "738461180800139267",
    "username": "tofu.alice",
    "discriminator": "0",
    "global_name": "Alice 🍵",
    "avatar": "6384e2b2184bcbf58eccf10ca7a6563c",
    "avatar_decoration_data": null,
    "collectibles": null,
    "primary_guild": null,
    "public_flags": 64
   },
   "attachments": [],
   "guild_id": "551460001558822912",
   "nonce": "1560260971012345856"
  }
 },
 "MESSAGE_DELETE": {
  "op": 0,
  "s": 1050,
  "t": "MESSAGE_DELETE",
  "d": {
   "id": "1560260871454851095",
   "channel_id": "551460004062953483",
   "guild_id": "551460001558822912"
  }
 },
 "MESSAGE_REACTION_ADD": {
  "op": 0,
  "s": 1051,
  "t": "MESSAGE_REACTION_ADD",
  "d": {
   "user_id": "224530200342429697",
   "type": 0,
   "message_id": "1560260971174428692",
   "message_author_id": "738461180800139267",
   "member": {
    "user": {
     "id": "224530200342429697",
     "username": "marisol.dev",
     "discriminator": "0",
     "global_name": "Marisol",
     "avatar": "72122ce96bfec66e2396d2e25225d70a",
     "avatar_decoration_data": null,
     "collectibles": null,
     "primary_guild": null,
     "public_flags": 0
    },
    "nick": null,
    "avatar": null,
    "banner": null,
    "roles": [
     "551461217894531077",
     "552460301107331079"
    ],
    "joined_at": "2019-03-02T17:45:10.000000+00:00",
    "premium_since": null,
    "deaf": false,
    "mute": false,
    "flags": 0,
    "pending": false,
    "communication_disabled_until": null
   },
   "emoji": {
    "name": "👀",
    "id": null
   },
   "channel_id": "551460004062953483",
   "burst": false,
   "guild_id": "551460001558822912"
  }
 },
 "GUILD_MEMBERS_CHUNK": {
  "op": 0,
  "s": 1052,
  "t": "GUILD_MEMBERS_CHUNK",
  "d": {
   "guild_id": "551460001558822912",
   "chunk_index": 0,
   "chunk_count": 5,
   "nonce": "c0ffee01",
   "members": [
    {
     "user": {
      "id": "1104364433381130244",
      "username": "bobby.tables",
      "discriminator": "0",
      "global_name": null,
      "avatar": null,
      "avatar_decoration_data": null,
      "collectibles": null,
      "primary_guild": null,
      "public_flags": 0
     },
     "nick": "Bobby",
     "avatar": null,
     "banner": null,
     "roles": [
      "552460301107331079"
     ],
     "joined_at": "2026-10-15T11:52:37.090000+00:00",
     "premium_since": null,
     "deaf": false,
     "mute": false,
     "flags": 3,
     "pending": false,
     "communication_disabled_until": null
    },
    {
     "user": {
      "id": "224530200342429697",
      "username": "marisol.dev",
      "discriminator": "0",
      "global_name": "Marisol",
      "avatar": "72122ce96bfec66e2396d2e25225d70a",
      "avatar_decoration_data": null,
      "collectibles": null,
      "primary_guild": null,
      "public_flags": 0
     },
     "nick": null,
     "avatar": null,
     "banner": null,
     "roles": [
      "551461217894531077",
      "552460301107331079"
     ],
     "joined_at": "2019-03-02T17:45:10.000000+00:00",
     "premium_since": null,
     "deaf": false,
     "mute": false,
     "flags": 0,
     "pending": false,
     "communication_disabled_until": null
    }
   ],
   "not_found": []
  }
 },
 "RATE_LIMITED": {
  "op": 0,
  "s": 1053,
  "t": "RATE_LIMITED",
  "d": {
   "opcode": 8,
   "retry_after": 27.431,
   "meta": {
    "guild_id": "551460001558822912",
    "nonce": "c0ffee02"
   }
  }
 },
 "RESUMED": {
  "op": 0,
  "s": 1200,
  "t": "RESUMED",
  "d": {}
 }
};

/** Event weights (our assumption for benchmarks, not Discord measurements). `other` is spread over the remaining fixtures. */
export const SUGGESTED_MIX: Readonly<Record<'presences_on' | 'presences_off', Readonly<Record<string, number>>>> = {
 "presences_on": {
  "PRESENCE_UPDATE": 0.9,
  "GUILD_MEMBER_UPDATE": 0.025,
  "MESSAGE_CREATE": 0.03,
  "TYPING_START": 0.015,
  "MESSAGE_UPDATE": 0.006,
  "MESSAGE_REACTION_ADD": 0.008,
  "MESSAGE_DELETE": 0.004,
  "VOICE_STATE_UPDATE": 0.008,
  "INTERACTION_CREATE": 0.002,
  "GUILD_CREATE": 0.0005,
  "other": 0.0015
 },
 "presences_off": {
  "MESSAGE_CREATE": 0.42,
  "TYPING_START": 0.2,
  "GUILD_MEMBER_UPDATE": 0.08,
  "MESSAGE_UPDATE": 0.07,
  "MESSAGE_REACTION_ADD": 0.08,
  "MESSAGE_DELETE": 0.04,
  "VOICE_STATE_UPDATE": 0.07,
  "INTERACTION_CREATE": 0.02,
  "GUILD_CREATE": 0.002,
  "other": 0.018
 }
};
