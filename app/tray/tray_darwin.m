// The NSStatusItem behind tray_darwin.go (ARC). Every AppKit call happens on
// the main queue, so it runs inside whatever owns the main run loop (the Wails
// app); the C entry points only copy their arguments and dispatch.
#import <Cocoa/Cocoa.h>
#include "tray_darwin.h"

extern void skiffTrayClicked(uintptr_t handle, char *action);
extern void skiffTrayReleased(uintptr_t handle);

@interface SkiffTrayController : NSObject
@property(nonatomic) uintptr_t handle;
@property(nonatomic, strong) NSStatusItem *item;
- (void)clicked:(NSMenuItem *)sender;
@end

@implementation SkiffTrayController
- (void)clicked:(NSMenuItem *)sender {
	NSString *action = sender.representedObject;
	if (action == nil) {
		return;
	}
	// A menu-bar (LSUIElement) app must activate itself for its window, or the dialog an action
	// shows (docker:, cli:), to come to the front.
	if ([action hasPrefix:@"open:"] || [action hasPrefix:@"logs:"] || [action hasPrefix:@"docker:"] ||
	    [action hasPrefix:@"cli:"]) {
		[NSApp activateIgnoringOtherApps:YES];
	}
	skiffTrayClicked(self.handle, (char *)[action UTF8String]);
}
@end

void *skiffTrayCreate(uintptr_t handle) {
	SkiffTrayController *c = [SkiffTrayController new];
	c.handle = handle;
	dispatch_async(dispatch_get_main_queue(), ^{
		NSStatusItem *item = [[NSStatusBar systemStatusBar] statusItemWithLength:NSVariableStatusItemLength];
		NSImage *image = nil;
		if (@available(macOS 11.0, *)) {
			image = [NSImage imageWithSystemSymbolName:@"shippingbox" accessibilityDescription:@"Skiff"];
		}
		if (image != nil) {
			image.template = YES;
			item.button.image = image;
		} else {
			item.button.title = @"Skiff";
		}
		item.button.toolTip = @"Skiff";
		c.item = item;
	});
	return (__bridge_retained void *)c;
}

void skiffTraySetMenu(void *controller, const SkiffTrayEntry *entries, int n) {
	SkiffTrayController *c = (__bridge SkiffTrayController *)controller;
	// Copy now: the Go side frees entries when this returns.
	NSMutableArray *rows = [NSMutableArray arrayWithCapacity:n];
	for (int i = 0; i < n; i++) {
		const SkiffTrayEntry *e = &entries[i];
		[rows addObject:@[
			[NSString stringWithUTF8String:(e->title ? e->title : "")] ?: @"?",
			e->action ? ([NSString stringWithUTF8String:e->action] ?: (id)[NSNull null]) : (id)[NSNull null],
			@(e->separator), @(e->enabled), @(e->depth),
		]];
	}
	dispatch_async(dispatch_get_main_queue(), ^{
		enum { maxDepth = 8 };
		NSMenu *root = [[NSMenu alloc] initWithTitle:@"Skiff"];
		root.autoenablesItems = NO;
		NSMenu *stack[maxDepth] = {root};
		for (NSUInteger i = 0; i < rows.count; i++) {
			NSArray *row = rows[i];
			int depth = [row[4] intValue];
			if (depth < 0 || depth >= maxDepth || stack[depth] == nil) {
				continue;
			}
			NSMenu *menu = stack[depth];
			if ([row[2] boolValue]) {
				[menu addItem:[NSMenuItem separatorItem]];
				continue;
			}
			NSMenuItem *mi = [[NSMenuItem alloc] initWithTitle:row[0] action:NULL keyEquivalent:@""];
			if (row[1] != [NSNull null]) {
				mi.target = c;
				mi.action = @selector(clicked:);
				mi.representedObject = row[1];
			}
			mi.enabled = [row[3] boolValue];
			[menu addItem:mi];
			for (int d = depth + 1; d < maxDepth; d++) {
				stack[d] = nil;
			}
			if (i + 1 < rows.count && [rows[i + 1][4] intValue] == depth + 1 && depth + 1 < maxDepth) {
				NSMenu *sub = [[NSMenu alloc] initWithTitle:row[0]];
				sub.autoenablesItems = NO;
				mi.submenu = sub;
				stack[depth + 1] = sub;
			}
		}
		c.item.menu = root;
	});
}

void skiffTrayDestroy(void *controller) {
	SkiffTrayController *c = (__bridge_transfer SkiffTrayController *)controller;
	dispatch_async(dispatch_get_main_queue(), ^{
		if (c.item != nil) {
			[[NSStatusBar systemStatusBar] removeStatusItem:c.item];
			c.item = nil;
		}
		// Last: no click can reach Go after this (clicks run on this queue too).
		skiffTrayReleased(c.handle);
	});
}
