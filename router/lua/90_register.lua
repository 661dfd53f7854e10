--
-- 90_register.lua - the library's Function names.
--

redis.register_function('omr_rules_load', rules_load)
redis.register_function('omr_agent_upsert', agent_upsert)
redis.register_function('omr_agent_get', agent_get)
redis.register_function('omr_agent_list', agent_list)
redis.register_function('omr_agent_remove', agent_remove)
redis.register_function('omr_agent_state', agent_state)
redis.register_function('omr_conv_start', conv_start)
redis.register_function('omr_conv_resume', conv_resume)
redis.register_function('omr_conv_message', conv_message)
redis.register_function('omr_conv_close', conv_close)
redis.register_function('omr_explain', explain)
redis.register_function('omr_agent_login', agent_login)
redis.register_function('omr_agent_presence', agent_presence)
redis.register_function('omr_agent_gone', agent_gone)
redis.register_function('omr_offer_accept', offer_accept)
redis.register_function('omr_offer_reject', offer_reject)
redis.register_function('omr_agent_seen', agent_seen)
redis.register_function('omr_agent_wrapup_end', agent_wrapup_end)
redis.register_function('omr_tick', tick)
