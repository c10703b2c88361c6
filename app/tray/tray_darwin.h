// C interface between tray_darwin.go and tray_darwin.m.
#include <stdint.h>

// One menu line, in depth-first order (a submenu's entries follow their
// parent at depth+1). action is "kind:id" for clickable entries, else NULL.
typedef struct {
	const char *title;
	const char *action;
	int separator;
	int enabled;
	int depth;
} SkiffTrayEntry;

void *skiffTrayCreate(uintptr_t handle);
void skiffTraySetMenu(void *controller, const SkiffTrayEntry *entries, int n);
void skiffTrayDestroy(void *controller);
