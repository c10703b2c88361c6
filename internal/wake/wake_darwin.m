// NSWorkspaceDidWakeNotification observer for events_darwin.go (manual retain/release).
#import <Cocoa/Cocoa.h>
#include <stdint.h>

extern void skiffWakeFired(uintptr_t handle);
extern void skiffWakeRelease(uintptr_t handle);

void *skiffWakeObserve(uintptr_t handle) {
	@autoreleasepool {
		NSNotificationCenter *nc = [[NSWorkspace sharedWorkspace] notificationCenter];
		id obs = [nc addObserverForName:NSWorkspaceDidWakeNotification
		                         object:nil
		                          queue:[NSOperationQueue mainQueue]
		                     usingBlock:^(NSNotification *note) { skiffWakeFired(handle); }];
		return [obs retain];
	}
}

void skiffWakeStop(void *observer, uintptr_t handle) {
	dispatch_async(dispatch_get_main_queue(), ^{
		id obs = (id)observer;
		[[[NSWorkspace sharedWorkspace] notificationCenter] removeObserver:obs];
		[obs release];
		skiffWakeRelease(handle);
	});
}
