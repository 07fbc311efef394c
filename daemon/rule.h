/* Rule files: one Lua state each, their handlers, and the coroutines
 * that run them. Main thread only. */
#ifndef MQTTRULES_RULE_H
#define MQTTRULES_RULE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include <lua.h>

#include "log.h"

struct config;
struct counter_store;
struct message;
struct topic_sub;

struct handler {
	char	*filter;
	int	 qos;
	bool	 retained;	/* also take retained messages */
	int	 fn_ref;	/* in the rule's registry */
};

struct invocation;

/* An environment variable a rule read, and how it was found. */
struct rule_env {
	char	*name;
	int	 state;		/* RULE_ENV_SET, _DEFAULT */
};

#define RULE_ENV_SET		1
#define RULE_ENV_DEFAULT	2

struct rule {
	char			*name;		/* file name without .lua */
	char			*path;
	lua_State		*L;
	size_t			 mem_used, mem_limit;
	long			 max_instructions;
	int			 default_qos;	/* for on() without opts.qos */
	int			 restore_ref;	/* timer.restore fn, or NOREF */
	bool			 loading;	/* chunk running: on() allowed */
	struct handler		*handlers;
	size_t			 nhandlers;
	struct invocation	*running;	/* live coroutines */
	struct invocation	*active;	/* the one inside lua_resume */
	long			 load_instructions;
	struct rule_env		*env;		/* variables read, for check */
	size_t			 nenv;
	struct counter_store	*counters;
	const struct config	*config;
	bool			 retired;	/* replaced or removed */
	struct stat		 stamp;		/* of the file when loaded */
	struct rule		*next;
};

/* Why a handler runs: whoever dispatched the message is told when the
 * run ends, with the failure (NULL when it succeeded). */
struct delivery {
	void	(*ended)(struct delivery *, struct rule *,
		    const char *failure);
};

/* One coroutine running a handler or a timer callback. */
struct invocation {
	struct rule		*rule;
	struct delivery		*delivery;	/* NULL for timers */
	char			*failure;	/* why it failed, if it did */
	lua_State		*co;
	int			 co_ref;
	char			*topic;		/* NULL in timer callbacks */
	bool			 waiting;	/* suspended in an API call */
	long			 instructions;
	struct invocation	*prev, *next;
};

struct rule_set {
	struct rule		*rules;		/* in file name order */
	size_t			 count;
	int			 default_qos;
	struct rule		*retired;	/* replaced, still running */
};

/* Pushes values onto L for a coroutine; runs in a protected call, so it
 * may raise errors. Returns how many it pushed. */
typedef int	rule_push_fn(lua_State *L, void *arg);

/*
 * Loads every *.lua file of dir in name order. Each failure is logged
 * (file and line) and counted; returns how many failed, or -1 when dir
 * cannot be read.
 */
int	rule_set_load(struct rule_set *, const struct config *,
	    struct counter_store *);
void	rule_set_free(struct rule_set *);

/* The filters to subscribe to: every handler's, reduced so that no two
 * overlap. Returns a malloc'd array (free with rule_subs_free). */
struct topic_sub	*rule_set_subscriptions(const struct rule_set *,
			    size_t *n);
void			 rule_subs_free(struct topic_sub *, size_t n);


/* Coroutines alive across all rules. */
size_t	rule_set_running(const struct rule_set *);

/* A full garbage collection in every rule's state (after a burst). */
void	rule_set_collect(struct rule_set *);

/* Starts fn_ref of rule in a new coroutine with the values push puts on
 * the stack; d (may be NULL) is told when it ends, which may be before
 * rule_start returns. */
void	rule_start(struct rule *, int fn_ref, const char *topic,
	    rule_push_fn *push, void *arg, struct delivery *d);

/* Pushes a handler's two arguments for message m (a rule_push_fn). */
int	rule_push_message(lua_State *L, void *m);

/* The invocation whose own coroutine is L: NULL at load, and in a
 * coroutine the rule created itself (an API call that suspends cannot
 * work there). */
struct invocation	*rule_current(lua_State *L);

/* The invocation running now in the rule that owns L, whichever of the
 * rule's coroutines L is; NULL at load. */
struct invocation	*rule_active(lua_State *L);

/* Marks L, a rule's main state, as the rule's: every thread created in
 * it inherits the mark. Sets the instruction hook for load time. */
void	rule_mark_state(lua_State *L, struct rule *);

/* Resumes a coroutine suspended in an API call with the values push
 * puts on the stack as that call's results. */
void	rule_resume(struct invocation *, rule_push_fn *push, void *arg);

/* Sees what rules log and how they fail, in place of the log
 * (mqttrules test). */
struct rule_observer {
	void	(*log)(const struct rule *, const char *topic,
		    enum log_level, const char *message);
	void	(*failed)(const struct rule *, const char *topic,
		    const char *message);
};

void				 rule_set_observer(const struct rule_observer *);
const struct rule_observer	*rule_observer(void);

/* Loads the given rule files instead of a directory; as rule_set_load
 * otherwise. */
int	rule_set_load_files(struct rule_set *, const struct config *,
	    struct counter_store *, char *const *paths, size_t n);

/* Loads one rule file, returning NULL with a message naming the file
 * and line in err on failure. */
struct rule	*rule_load_file(const char *path, const struct config *,
		    struct counter_store *, char *err, size_t size);
void		 rule_free(struct rule *);

/* The *.lua files of dir in name order, as dir/name paths; NULL with
 * errno set when dir cannot be read. Free with rule_files_free. */
char		**rule_list_files(const char *dir, size_t *n);
void		 rule_files_free(char **, size_t n);

/*
 * Reloads dir (SIGHUP): a changed file is loaded anew and replaces its
 * rule, a removed one stops, a new one starts; a file that fails to
 * load keeps its previous version and is logged. Replaced rules stop
 * getting events and timers at once and are freed once their running
 * coroutines end. Counters are shared and so survive. Returns how many
 * files failed.
 */
int	rule_set_reload(struct rule_set *, const struct config *,
	    struct counter_store *);

/* Frees retired rules whose coroutines have all ended. */
void	rule_set_reap(struct rule_set *);

/* Registers the API of rule files in L's globals (lapi.c). */
void	lapi_open(lua_State *L, struct rule *);

#endif
